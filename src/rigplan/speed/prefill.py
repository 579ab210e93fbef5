"""Prefill: processing the prompt in micro-batches, and the time to the first token.

Per GPU and micro-batch of u tokens at position p (perf-model.md §4)::

    matmuls    = 2 · weights · u / tensor throughput
                 (llama.cpp MMQ: smoothmax with the weight bytes loaded once per 128-token
                 column tile / (η_mem · BW); Vulkan on AMD coopmat GPUs from b7707: ÷ the tiles' gain)
    dequant    = quantised weights · cycles / (SMs · clock)      (weights dequantised per batch;
                 llama.cpp MMQ: per 128-token column tile, an expert's tokens = k · u / touched)
    attention  = 4 · n_h · d_h · layers · (p + u) · u / (η_attn · tensor throughput)
               + score passes · n_h · layers · (p + u) · u · 4 B / (η_mem · BW)   (no flash attention)
               + K/V reads per query row · KV width · 2 B · layers · (p + u/2) · u / (η_mem · BW)
                                                                                 (flash attention)
    (a sliding-window layer sees at most its window of the p cached tokens: llama.cpp keeps
    window + n_ubatch cells in its SWA cache)
    activations= passes · u · (d + d_ff) · 4 B · layers / (η_mem · BW)
    overhead   = layers · per-layer overhead (+ touched experts · per-expert call, 16-bit experts)
    (an SoC sharing LPDDR memory and power with its CPU: all of it ÷ prefill_efficiency_unified)

A layer split pipelines micro-batches across GPUs (llama.cpp pipeline parallelism: up to
n_batch / n_ubatch micro-batches in flight, drained after each llama_decode call); tensor
parallel GPUs share each micro-batch and all-reduce twice per layer; offloaded layers have their
weights copied to the GPU for every micro-batch, as llama.cpp does for batches of 32 or more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import arch
from ..catalog.records import GPU, Model
from . import hardware
from .comm import ACTIVATION_BYTES_16, ACTIVATION_BYTES_32
from .decode import (
    ALL_REDUCES_PER_LAYER,
    FP16_BYTES,
    HOST_MEMORY_EFFICIENCY,
    KERNEL_MAX_EXPONENT,
    Topology,
    gemm_precision,
    memory_efficiency,
    smooth_max,
    tensor_throughput,
)
from .profile import EngineBehaviour, SpeedParameters
from .work import DeviceWork, ForwardWork, experts_active_fraction, experts_read_fraction, query_group

#: Bytes of an f32 activation / attention-score element in llama.cpp's graph.
F32_BYTES = 4
#: Bytes of a cached K or V element (llama-bench's default f16 cache).
KV_F16_BYTES = FP16_BYTES
#: Causal flash attention computes only the lower triangle: half the (p+u)·u score pairs of a
#: micro-batch's own block (FlashAttention-2 skips masked tiles).
CAUSAL_FRACTION = 0.5
#: Share of PCIe bandwidth reached copying offloaded weights to the GPU per micro-batch
#: (pageable host memory) [D].
HOST_COPY_EFFICIENCY = 0.7
#: Tokens per column tile of llama.cpp's quantised matmul kernel (MMQ): a block computes up to
#: 128 token columns against a tile of weight rows it loads and unpacks into shared memory, so the
#: weights are dequantised once per 128 tokens, not once per micro-batch [S: ggml-org/llama.cpp
#: ggml/src/ggml-cuda/mmq.cuh, get_mmq_x_max_host: 128 with Turing+ MMA, AMD MFMA / WMMA].
MMQ_TILE_TOKENS = 128
#: llama.cpp moves an offloaded layer's matmul to the GPU from this many tokens up
#: (ggml-backend scheduler, "offload op" for batches ≥ 32).
HOST_OFFLOAD_MIN_BATCH = 32


def micro_batches(prompt_tokens: int, size: int, start: int = 0) -> list[tuple[int, int]]:
    """(position, tokens) of each micro-batch of a prompt that follows ``start`` cached tokens."""
    out, pos, end = [], start, start + prompt_tokens
    while pos < end:
        n = min(size, end - pos)
        out.append((pos, n))
        pos += n
    return out


def _ffn_width(model: Model) -> int:
    if model.is_moe:
        return model.moe_ffn_size * (model.moe_active_experts + model.moe_shared_experts)
    return model.ffn_size


@dataclass(frozen=True, slots=True)
class MicroBatchCost:
    matmul_s: float
    dequant_s: float
    attention_s: float
    activation_s: float
    overhead_s: float
    comm_s: float

    @property
    def total_s(self) -> float:
        return self.matmul_s + self.dequant_s + self.attention_s + self.activation_s + self.overhead_s + self.comm_s

    def scaled(self, factor: float) -> MicroBatchCost:
        return MicroBatchCost(*(getattr(self, f) * factor for f in self.__dataclass_fields__))


def device_micro_batch(
    params: SpeedParameters,
    behaviour: EngineBehaviour,
    dev: DeviceWork,
    model: Model,
    position: int,
    tokens: int,
) -> MicroBatchCost:
    """One GPU's share of one micro-batch (without communication)."""
    gpu = dev.gpu
    frac = experts_read_fraction(model, tokens)
    weights = dev.dense.plus(dev.experts.scaled(frac))
    quantized = weights.quantized_elements > 0
    flops_s = tensor_throughput(params, behaviour, gpu, quantized=quantized, precision=gemm_precision(weights))
    bw = memory_efficiency(params, gpu) * hardware.bandwidth_bytes_per_s(gpu)
    layers = len(dev.layers)
    # FLOPs: every token through the dense weights and k of E experts; the dequantisation
    # works on every expert the micro-batch touches.
    fill = _expert_fill(params, gpu, model)
    active = dev.dense.total_elements + dev.experts.total_elements * experts_active_fraction(model) * fill
    matmul = 2 * active * tokens / flops_s
    dense_tiles, expert_tiles = _dequant_tiles(dev, model, tokens, frac, tiled=behaviour.mmq_tile_dequant)
    dequant = (dense_tiles + expert_tiles * fill) * params.dequant_sm_cycles_per_weight / hardware.sm_clock_per_s(gpu)
    if from_build(behaviour.amd_coopmat_tiles_build, behaviour) and hardware.has_amd_coopmat(gpu):
        matmul /= params.amd_coopmat_tiles_speedup
        dequant /= params.amd_coopmat_tiles_speedup
    if behaviour.mmq_tile_dequant:  # each 128-token column tile loads its weight tiles from memory
        reloads = _weight_reloads(dev, model, tokens, frac) / bw
        matmul = smooth_max(matmul + dequant, reloads, p=KERNEL_MAX_EXPONENT) - dequant
    pairs = _attention_pairs(dev, model, position, tokens, behaviour.flash_attention)
    width = arch.attention_width(model)
    # Attention (flash or not) multiplies 16-bit Q, K and V: the FP16 tensor rate, never the
    # INT8 rate the quantised weights' MMQ matmuls get.
    attention_flops_s = params.attention_efficiency * tensor_throughput(params, behaviour, gpu, quantized=False)
    attention = 4 * width * pairs / dev.shard / attention_flops_s
    if behaviour.flash_attention:  # K and V re-read from memory for every tile of query rows
        reads = params.flash_kv_reads_per_query * _kv_pairs(dev, position, tokens) * KV_F16_BYTES / bw
        attention += reads * (query_group(model) if behaviour.flash_kv_per_query_head else 1.0)
    else:  # scores materialised in f32 and re-read by softmax
        heads_pairs = model.num_heads * pairs
        attention += params.attention_score_passes * heads_pairs * F32_BYTES / dev.shard / bw
    activation = params.activation_passes * tokens * (model.hidden_size + _ffn_width(model) / dev.shard)
    activation *= F32_BYTES * layers / bw
    overhead = layers * params.prefill_overhead_per_layer_s + _float_expert_calls(dev, model, tokens) * (
        params.float_expert_call_s
    )
    cost = MicroBatchCost(matmul, dequant, attention, activation, overhead, 0.0)
    return cost.scaled(1.0 / params.prefill_efficiency_unified) if hardware.is_lpddr_soc(gpu) else cost


def _column_tiles(model: Model, tokens: int, frac: float) -> tuple[int, int]:
    """Column tiles of up to MMQ_TILE_TOKENS tokens a dense matrix and a routed expert see in
    one micro-batch: ceil(tokens / 128); an expert its share of the k · u token slots among the
    experts the micro-batch touches (uniform routing)."""
    dense = math.ceil(tokens / MMQ_TILE_TOKENS)
    if not (model.is_moe and frac > 0):
        return dense, 0
    return dense, math.ceil(tokens * experts_active_fraction(model) / frac / MMQ_TILE_TOKENS)


def _dequant_tiles(dev: DeviceWork, model: Model, tokens: int, frac: float, *, tiled: bool) -> tuple[float, float]:
    """Quantised weight elements unpacked for one micro-batch, (dense, routed experts): once per
    micro-batch, or (``tiled``, llama.cpp's MMQ) once per column tile (:func:`_column_tiles`)."""
    experts = dev.experts.quantized_elements * frac if model.is_moe and frac > 0 else 0.0
    if not tiled:
        return dev.dense.quantized_elements, experts
    dense_tiles, expert_tiles = _column_tiles(model, tokens, frac)
    return dev.dense.quantized_elements * dense_tiles, experts * expert_tiles


def _weight_reloads(dev: DeviceWork, model: Model, tokens: int, frac: float) -> float:
    """Weight bytes a micro-batch's MMQ matmuls load: each matrix once per column tile
    (:func:`_column_tiles`; stream-k walks a column tile's row tiles before the next)."""
    dense_tiles, expert_tiles = _column_tiles(model, tokens, frac)
    return dev.dense.nbytes * dense_tiles + dev.experts.nbytes * frac * expert_tiles


def _expert_fill(params: SpeedParameters, gpu: GPU, model: Model) -> float:
    """How much longer a prompt's routed-expert matmuls take than their share of the GPU's SMs
    says: they keep at most ``moe_gemm_sm_limit`` SMs busy, so a GPU with more runs them as if it
    had that many (1: no limit, dense models, or a GPU at or under it)."""
    if not model.is_moe:
        return 1.0
    limit = params.moe_gemm_sm_limit
    crowded = max(1.0, (gpu.sm_count or hardware.DEFAULT_SM_COUNT) / limit) if limit > 0 else 1.0
    return crowded / params.moe_gemm_efficiency


def _attention_pairs(dev: DeviceWork, model: Model, position: int, tokens: int, flash: bool) -> float:
    """Query–key pairs of a micro-batch summed over the GPU's KV layers: each query row against
    the cached tokens its layer keeps (a sliding-window layer at most its window) and the
    micro-batch's own tokens (half of them under flash attention's causal tile skipping)."""
    own = CAUSAL_FRACTION * tokens if flash else tokens
    local = dev.kv_window_layers
    seen = (len(dev.kv_layers) - local) * position + local * min(position, model.sliding_window or 0)
    return (seen + len(dev.kv_layers) * own) * tokens


def _kv_pairs(dev: DeviceWork, position: int, tokens: int) -> float:
    """Cached K and V elements a flash-attention micro-batch streams, once per query row: each
    layer's K/V width (this GPU's heads) times the tokens it attends to (a sliding-window layer
    at most its window of the cache, plus the causal half of the micro-batch)."""
    per_token = dev.kv_full_elements + sum(n for n, _ in dev.kv_windowed)
    elements = dev.kv_elements(position) + CAUSAL_FRACTION * tokens * per_token
    return elements * tokens * dev.kv_shard_fraction


def _float_expert_calls(dev: DeviceWork, model: Model, tokens: int) -> float:
    """Expert matmuls a micro-batch runs one by one: every touched expert of every MoE layer,
    where the experts are 16-bit (0 for quantised experts, which one grouped MMQ kernel runs)."""
    if not model.is_moe or not dev.experts.total_elements or dev.experts.quantized_elements:
        return 0.0
    moe_layers = sum(1 for i in dev.layers if i >= model.moe_first_dense_layers)
    return moe_layers * experts_read_fraction(model, tokens) * model.moe_num_experts


@dataclass(frozen=True, slots=True)
class Prefill:
    """Time to process one prompt (seconds), with the first stage's first micro-batch."""

    total_s: float
    micro_batches: int
    pipelined: bool
    first: MicroBatchCost | None
    host_s: float
    #: GPU time divided by this: the build-era term (1: none).
    build_speedup: float = 1.0
    build: int = 0


def _pipeline(times: list[list[float]], hops: list[float], drain_every: int) -> float:
    """Finish time of a linear pipeline: stage s starts micro-batch k when stage s−1 has
    handed it over and stage s has finished k−1; the first stage waits for the pipeline to
    drain every ``drain_every`` micro-batches."""
    stages, n = len(times), len(times[0])
    finish = [[0.0] * n for _ in range(stages)]
    for k in range(n):
        for s in range(stages):
            start = finish[s][k - 1] if k else 0.0
            if s:
                start = max(start, finish[s - 1][k] + hops[s - 1])
            elif k and k % drain_every == 0:
                start = max(start, finish[-1][k - 1])
            finish[s][k] = start + times[s][k]
    return finish[-1][-1]


#: The build the prompt-speed build-era term is centred on (Dec 2025, the middle of the
#: 2025–26 rows' b5863–b10032); rows without a build number are priced at it [D].
BUILD_ERA_REFERENCE = 7500


def from_build(first: int, behaviour: EngineBehaviour) -> bool:
    """The estimate's build has a kernel change that arrived in build ``first`` (0: none); an
    estimate without a build is priced at :data:`BUILD_ERA_REFERENCE`."""
    return 0 < first <= (behaviour.build or BUILD_ERA_REFERENCE)


def build_era_speedup(params: SpeedParameters, behaviour: EngineBehaviour) -> float:
    """How much faster a build's prompt kernels are than the reference build's (1: no term)."""
    if not behaviour.build or params.prefill_speedup_per_kilobuild == 1.0:
        return 1.0
    return float(params.prefill_speedup_per_kilobuild ** ((behaviour.build - BUILD_ERA_REFERENCE) / 1000.0))


def prefill_time(
    params: SpeedParameters,
    behaviour: EngineBehaviour,
    work: ForwardWork,
    model: Model,
    prompt_tokens: int,
    topo: Topology,
    *,
    layer_split_hops: bool,
    depth: int = 0,
) -> Prefill:
    """Time to process a prompt of ``prompt_tokens`` after ``depth`` cached tokens (llama-bench
    ``-d``; 0: an empty cache)."""
    batches = micro_batches(prompt_tokens, behaviour.micro_batch_tokens, depth)
    times, first = _stage_times(params, behaviour, work, model, batches, topo)
    act = ACTIVATION_BYTES_32 if layer_split_hops else ACTIVATION_BYTES_16
    hops = []
    for a, b in zip(topo.stage_nodes, topo.stage_nodes[1:], strict=False):
        link = topo.network if a != b else topo.link
        hops.append(
            params.pipeline_hop_s + behaviour.micro_batch_tokens * model.hidden_size * act / link.bus_bytes_per_s
        )
    host_s = _host_time(params, behaviour, work, model, batches, topo)
    pipelined = behaviour.pipeline_parallel_prefill and len(times) > 1 and not work.host_layers and len(batches) > 1
    if not times:
        return Prefill(host_s, len(batches), False, None, host_s)
    if pipelined:
        drain = max(1, behaviour.batch_tokens // behaviour.micro_batch_tokens)
        total = _pipeline(times, hops, drain)
    else:
        total = sum(sum(r) for r in times) + sum(hops) * len(batches)
    speedup = build_era_speedup(params, behaviour)
    return Prefill(total / speedup + host_s, len(batches), pipelined, first, host_s, speedup, behaviour.build)


def _stage_times(
    params: SpeedParameters,
    behaviour: EngineBehaviour,
    work: ForwardWork,
    model: Model,
    batches: list[tuple[int, int]],
    topo: Topology,
) -> tuple[list[list[float]], MicroBatchCost | None]:
    """Seconds of each micro-batch on each pipeline stage (its slowest GPU, with the tensor
    parallel all-reduces), and the first stage's first micro-batch."""
    times: list[list[float]] = []
    first: MicroBatchCost | None = None
    for stage in work.stages:
        row: list[float] = []
        ranks = len(stage)
        link = topo.network if topo.tp_spans_nodes else topo.link
        for pos, n in batches:
            costs = [device_micro_batch(params, behaviour, d, model, pos, n) for d in stage]
            worst = max(costs, key=lambda c: c.total_s)
            comm = 0.0
            if ranks > 1:
                comm = (
                    ALL_REDUCES_PER_LAYER
                    * len(stage[0].layers)
                    * link.all_reduce_s(n * model.hidden_size * ACTIVATION_BYTES_16, ranks)
                )
            if first is None:
                first = MicroBatchCost(
                    worst.matmul_s, worst.dequant_s, worst.attention_s, worst.activation_s, worst.overhead_s, comm
                )
            row.append(worst.total_s + comm)
        # The prompt's last token goes through the output head (llama.cpp and vLLM compute
        # logits only for the tokens that need them).
        head = sum(d.output.nbytes for d in stage) / ranks
        if head and row:
            gpu = stage[0].gpu
            row[-1] += head / (memory_efficiency(params, gpu) * hardware.bandwidth_bytes_per_s(gpu))
        times.append(row)
    return times, first


def _host_time(
    params: SpeedParameters,
    behaviour: EngineBehaviour,
    work: ForwardWork,
    model: Model,
    batches: list[tuple[int, int]],
    topo: Topology,
) -> float:
    """Seconds spent on layers kept in host memory: copied to the GPU for micro-batches of
    HOST_OFFLOAD_MIN_BATCH tokens or more, else run by the CPU at host bandwidth."""
    if not work.host_layers:
        return 0.0
    host_s = 0.0
    host_bytes = work.host.nbytes + work.host_experts.nbytes
    copy = host_bytes / (HOST_COPY_EFFICIENCY * topo.host_link_bytes_per_s)
    first_gpu = work.stages[0][0].gpu if work.stages else None
    for _pos, n in batches:
        if n >= HOST_OFFLOAD_MIN_BATCH and first_gpu is not None:
            active = work.host.total_elements + work.host_experts.total_elements * experts_active_fraction(model)
            flops = 2 * active * n
            host_s += copy + flops / tensor_throughput(params, behaviour, first_gpu, quantized=True)
        else:
            host_s += host_bytes / (topo.host_bandwidth_bytes_per_s * HOST_MEMORY_EFFICIENCY)
    return host_s
