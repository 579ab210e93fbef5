"""Decode: time of one generation step, per GPU, per pipeline stage, for the whole rig.

Per GPU (perf-model.md §3.1, with the engine profile's fitted efficiencies)::

    memory  = (weights read + KV read × attention factor) / (η_mem(memory class) · BW)
    alu     = Σ_class weights_class × cycles_per_weight_class / (SMs · clock)
    compute = 2 · weights · batch / tensor throughput            (large batches only)
    attn    = smoothmax(KV read time, attention FLOPs · cycles per FLOP / (SMs · clock)) − KV read time
    gpu     = smoothmax(memory, alu, compute) + attn             (attn: where the backend's kernel
                                                                  computes slower than it streams)
    device  = smoothmax(gpu, layers · launch overhead)           (CPU launches hide behind GPU work)
              + layers · serial overhead                         (synchronisation that does not)

A layer split runs its GPUs one after another (+ a hop per boundary); tensor-parallel GPUs run
together and pay two all-reduces per layer; offloaded layers run on the host at its memory
bandwidth.  ``decode_tokens_per_s`` averages the step time over the output tokens as the
context grows.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import arch
from ..catalog.records import GPU, Model
from . import hardware
from .comm import ACTIVATION_BYTES_16, ACTIVATION_BYTES_32, LinkModel
from .profile import WEIGHT_CLASSES, EngineBehaviour, SpeedParameters
from .work import (
    DeviceWork,
    ForwardWork,
    WeightSet,
    experts_active_fraction,
    experts_read_fraction,
    kv_read_bytes,
    query_group,
)

#: Exponents of the smooth maxima joining terms that overlap.  Inside a kernel, memory streaming
#: and instruction issue overlap almost fully (near a hard max); CPU launches overlap GPU work
#: only partly (softer).  Chosen under leave-one-GPU-out on the llama.cpp rows [D].
SMOOTH_MAX_EXPONENT = 3.0
KERNEL_MAX_EXPONENT = 3.0
#: Points at which the step time is sampled across the output tokens (midpoint rule).
CONTEXT_SAMPLES = 8
#: llama.cpp ``-sm row`` synchronises once per split matmul (≈7 per layer: q, k, v, o, gate,
#: up, down), each costing about two all-reduce latencies [S:LCPP-4747, S:LCPP-5619, D].
ROW_SPLIT_SYNCS_PER_LAYER = 7
ROW_SPLIT_SYNC_LATENCIES = 2
#: Tensor parallel: two all-reduces per layer in the forward pass (Megatron) [S:MEG21].
ALL_REDUCES_PER_LAYER = 2
#: A CPU running offloaded layers reaches about 0.65 of its DRAM bandwidth in llama.cpp's
#: matrix-vector kernels [D: typical DDR5 desktop results, 50–70 %].
HOST_MEMORY_EFFICIENCY = 0.65
#: Weights in FP8 / INT8 above this share run their GEMMs on 8-bit tensor cores (vLLM's FP8 and
#: W8A8 methods quantise activations too; embeddings and lm_head stay 16-bit) [D].
EIGHT_BIT_GEMM_SHARE = 0.5
#: Matmul FLOPs per weight per token (multiply + add).
FLOPS_PER_WEIGHT = 2
#: Bytes of one FP16 element.
FP16_BYTES = 2
#: Attention FLOPs per cached token per query-head dimension (QK^T and ·V, 2 each).
ATTENTION_FLOPS_PER_KV = 4
#: Tensors a cached token keeps per KV head: K and V (the 4 FLOPs above split 2 and 2).
KV_TENSORS = 2


def smooth_max(*values: float, p: float = SMOOTH_MAX_EXPONENT) -> float:
    """(Σ xᵢᵖ)^(1/p): at least the largest term, at most 2^(1/p) times it for two equal terms."""
    top = max(values)
    if top <= 0.0:
        return 0.0
    total: float = sum((v / top) ** p for v in values if v > 0.0)
    return float(top * total ** (1.0 / p))


def memory_efficiency(params: SpeedParameters, gpu: GPU) -> float:
    cls = hardware.memory_class(gpu)
    if cls == hardware.HBM:
        return params.memory_efficiency_hbm
    if cls == hardware.UNIFIED:
        return params.memory_efficiency_unified
    return params.memory_efficiency_gddr


def gemm_precision(weights: WeightSet) -> str:
    """ "fp8" / "int8" when most weights are FP8 / INT8 (8-bit GEMMs), else "16"."""
    total = weights.total_elements
    for cls in ("fp8", "int8"):
        if total and weights.elements[WEIGHT_CLASSES.index(cls)] > EIGHT_BIT_GEMM_SHARE * total:
            return cls
    return "16"


def tensor_throughput(
    params: SpeedParameters, behaviour: EngineBehaviour, gpu: GPU, *, quantized: bool, precision: str = "16"
) -> float:
    """Achieved matmul FLOP/s: harmonic mix of the efficiency × peak and the per-SM ceiling."""
    cap = params.sm_flops_per_cycle_cap * hardware.sm_clock_per_s(gpu)
    if behaviour.amd_vector_basis and gpu.vendor == "amd" and precision == "16":
        basis = hardware.amd_prompt_fp16_flops(gpu, wmma=behaviour.amd_wmma_prefill)
        return 1.0 / (1.0 / (params.tensor_efficiency * basis) + 1.0 / cap)
    int8 = hardware.mmq_int8_ops(gpu) if quantized and precision == "16" and behaviour.int8_mma_prefill else None
    if int8:  # llama.cpp MMQ: activations quantised to q8_1, INT8 MMA tiles
        return 1.0 / (1.0 / (params.tensor_efficiency * int8) + 1.0 / cap)
    peak = hardware.matmul_peak_flops(
        gpu, fp16_accumulate=behaviour.fp16_accumulate, quantized=quantized, precision=precision
    )
    return 1.0 / (1.0 / (params.tensor_efficiency * peak) + 1.0 / cap)


def own_kernel_passes(behaviour: EngineBehaviour, gpu: GPU, weights: WeightSet, batch: int) -> int:
    """Passes of the engine's own quantised decode kernel over the weights (0: the batch runs on
    the tensor cores instead, one unpacking of the weights as for one sequence)."""
    if not weights.quantized_elements or batch > behaviour.quantized_gemm_max_rows:
        return 0
    return -(-batch // behaviour.quantized_gemm_rows_per_pass)


def batch_matmul_throughput(
    params: SpeedParameters, behaviour: EngineBehaviour, gpu: GPU, weights: WeightSet, batch: int
) -> float:
    """Achieved FLOP/s of a decode batch's matmuls: the tensor cores, or the FP16 vector units
    (:func:`hardware.vector_fp16_flops`) where the engine's own quantised kernel takes batches
    this small."""
    if own_kernel_passes(behaviour, gpu, weights, batch):
        return params.tensor_efficiency * hardware.vector_fp16_flops(gpu)
    quantized = weights.quantized_elements > 0
    return tensor_throughput(params, behaviour, gpu, quantized=quantized, precision=gemm_precision(weights))


def attention_excess_s(
    params: SpeedParameters, dev: DeviceWork, model: Model, context: int, batch: int, kv_s: float
) -> float:
    """How much longer the decode attention kernel takes than streaming its KV cache (``kv_s``)
    where its arithmetic, at the profile's rate per SM-cycle, is slower: QK^T and PV are 2 FLOPs
    per cached K or V element per query head, so GQA models pay for every query head."""
    if not params.decode_attention_sm_cycles_per_flop:
        return 0.0
    per_element = ATTENTION_FLOPS_PER_KV / KV_TENSORS
    flops = per_element * dev.kv_elements(context) * dev.kv_shard_fraction * query_group(model) * batch
    compute_s = flops * params.decode_attention_sm_cycles_per_flop / hardware.sm_clock_per_s(dev.gpu)
    return smooth_max(kv_s, compute_s, p=KERNEL_MAX_EXPONENT) - kv_s


@dataclass(frozen=True, slots=True)
class DeviceStep:
    """One GPU's decode step, by term (seconds)."""

    memory_s: float
    alu_s: float
    compute_s: float
    launch_s: float
    total_s: float
    bytes_read: float
    gpu: str = ""
    memory_efficiency: float = 0.0
    bandwidth_bytes_per_s: float = 0.0
    attention_s: float = 0.0  # decode attention's arithmetic beyond its KV streaming
    serial_s: float = 0.0  # per-layer syncs and expert calls, after the overlapping part


def device_step(
    params: SpeedParameters,
    behaviour: EngineBehaviour,
    dev: DeviceWork,
    model: Model,
    kv_element_bytes: float,
    context: int,
    batch: int,
) -> DeviceStep:
    """Time of one decode step of ``batch`` sequences at ``context`` tokens on one GPU."""
    gpu = dev.gpu
    frac = experts_read_fraction(model, batch)
    weights = dev.step_weights(frac)
    kv = dev.kv_bytes(context, kv_element_bytes) * batch
    broadcast = behaviour.kv_read_per_query_head and not behaviour.flash_attention
    factor = params.attention_read_factor * (query_group(model) if broadcast else 1.0)
    bytes_read = weights.nbytes + kv * factor
    if behaviour.quantized_gemm_max_rows and batch > behaviour.quantized_gemm_max_rows:
        # Past its own kernel's rows the engine writes each quantised matrix out as FP16 for
        # cuBLAS, every step (ExLlamaV2's reconstruct-then-cublasHgemm path).  Counted once, not
        # as a write and a read: a choice, so that the two paths price alike at the engine's
        # switch (32 rows), where its author found them level; write + read made a 2.5x cliff.
        bytes_read += weights.quantized_elements * FP16_BYTES
    eta, bw = memory_efficiency(params, gpu), hardware.bandwidth_bytes_per_s(gpu)
    memory_s = bytes_read / (eta * bw)
    attention_s = attention_excess_s(params, dev, model, context, batch, kv * factor / (eta * bw))
    cycles = sum(n * params.cycles_per_weight(c) for n, c in zip(weights.elements, WEIGHT_CLASSES, strict=True))
    alu_s = cycles * max(1, own_kernel_passes(behaviour, gpu, weights, batch)) / hardware.sm_clock_per_s(gpu)
    compute_s = 0.0
    if batch > 1:
        attn = ATTENTION_FLOPS_PER_KV * arch.attention_width(model)
        # Each token multiplies with k of E experts, however many the batch touches.
        active = dev.dense.total_elements + dev.output.total_elements
        active += dev.experts.total_elements * experts_active_fraction(model)
        flops = FLOPS_PER_WEIGHT * active * batch
        flops += attn * context * len(dev.kv_layers) * batch / dev.shard
        compute_s = flops / batch_matmul_throughput(params, behaviour, gpu, weights, batch)
    gpu_s = smooth_max(memory_s, alu_s, compute_s, p=KERNEL_MAX_EXPONENT) + attention_s
    launch_s = len(dev.layers) * params.launch_overhead_per_layer_s
    serial_s = len(dev.layers) * params.serial_overhead_per_layer_s
    if model.is_moe:
        moe_layers = sum(1 for i in dev.layers if i >= model.moe_first_dense_layers)
        serial_s += moe_layers * params.expert_overhead_per_layer_s
        touched = frac * model.moe_num_experts if dev.experts.total_elements else 0.0
        serial_s += moe_layers * touched * params.active_expert_overhead_s
    total = smooth_max(gpu_s, launch_s) + serial_s
    return DeviceStep(memory_s, alu_s, compute_s, launch_s, total, bytes_read, gpu.id, eta, bw, attention_s, serial_s)


@dataclass(frozen=True, slots=True)
class Step:
    """The rig's decode step at one context (seconds), with its parts for --explain."""

    total_s: float
    gpus_s: float
    comm_s: float
    hops_s: float
    host_s: float
    overhead_s: float
    slowest: DeviceStep | None


@dataclass(frozen=True, slots=True)
class Topology:
    """How the stages talk: the link inside a node, the network, where node boundaries are."""

    link: LinkModel
    network: LinkModel
    stage_nodes: tuple[int, ...]  # node of each stage
    tp_spans_nodes: bool
    host_bandwidth_bytes_per_s: float  # host DRAM, for offloaded layers
    host_link_bytes_per_s: float  # PCIe between host and GPU, for weights copied per batch


def step_time(
    params: SpeedParameters,
    behaviour: EngineBehaviour,
    work: ForwardWork,
    model: Model,
    kv_element_bytes: float,
    context: int,
    batch: int,
    topo: Topology,
    *,
    layer_split_hops: bool,
) -> Step:
    """One decode step of the whole rig."""
    gpus_s = comm_s = 0.0
    slowest: DeviceStep | None = None
    act = ACTIVATION_BYTES_16 if not layer_split_hops else ACTIVATION_BYTES_32
    for stage in work.stages:
        steps = [device_step(params, behaviour, d, model, kv_element_bytes, context, batch) for d in stage]
        worst = max(steps, key=lambda s: s.total_s)
        if slowest is None or worst.total_s > slowest.total_s:
            slowest = worst
        gpus_s += worst.total_s
        ranks = len(stage)
        if ranks > 1:
            link = topo.network if topo.tp_spans_nodes else topo.link
            layers = len(stage[0].layers)
            if work.split == "row":
                comm_s += layers * ROW_SPLIT_SYNCS_PER_LAYER * ROW_SPLIT_SYNC_LATENCIES * link.latency_s
            else:
                nbytes = batch * model.hidden_size * ACTIVATION_BYTES_16
                comm_s += ALL_REDUCES_PER_LAYER * layers * link.all_reduce_s(nbytes, ranks)
    hops_s = 0.0
    for a, b in zip(topo.stage_nodes, topo.stage_nodes[1:], strict=False):
        if layer_split_hops:
            hops_s += params.layer_split_hop_s
        else:
            link = topo.network if a != b else topo.link
            hops_s += link.transfer_s(batch * model.hidden_size * act)
    host_s = 0.0
    if work.host_layers:
        frac = experts_read_fraction(model, batch)
        host_bytes = work.host.nbytes + work.host_experts.nbytes * frac
        host_bytes += kv_read_bytes(model, work.host_layers, context, kv_element_bytes, work.honor_window) * batch
        host_s = host_bytes / (HOST_MEMORY_EFFICIENCY * topo.host_bandwidth_bytes_per_s)
        host_s += params.layer_split_hop_s  # the activation crosses to the GPUs and back
    total = gpus_s + comm_s + hops_s + host_s + params.step_overhead_s
    return Step(total, gpus_s, comm_s, hops_s, host_s, params.step_overhead_s, slowest)


def context_samples(prompt_tokens: int, output_tokens: int) -> list[int]:
    """Contexts at which to sample the step time over the generated tokens (midpoints)."""
    n = max(1, min(CONTEXT_SAMPLES, output_tokens))
    width = output_tokens / n
    return [prompt_tokens + int(width * (j + 0.5)) for j in range(n)]


def average_step(
    params: SpeedParameters,
    behaviour: EngineBehaviour,
    work: ForwardWork,
    model: Model,
    kv_element_bytes: float,
    prompt_tokens: int,
    output_tokens: int,
    batch: int,
    topo: Topology,
    *,
    layer_split_hops: bool,
) -> tuple[float, Step]:
    """Mean step time over the output tokens and the step at the mean context."""
    samples = context_samples(prompt_tokens, output_tokens)
    steps = [
        step_time(params, behaviour, work, model, kv_element_bytes, c, batch, topo, layer_split_hops=layer_split_hops)
        for c in samples
    ]
    mean = sum(s.total_s for s in steps) / len(steps)
    return mean, steps[len(steps) // 2]
