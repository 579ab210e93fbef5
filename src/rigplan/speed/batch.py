"""Serving: one decode step of a batch of users on a vLLM-class engine (vLLM, SGLang, TensorRT-LLM).

Per GPU of a tensor-parallel group and step, with ``B`` sequences decoding at context ``c`` and
``P`` prompt tokens of other requests riding along (chunked prefill)::

    memory  = (dense + head + B · KV(c)) / (η_mem · BW) + experts touched by B+P tokens / (η_mem · η_moe · BW)
    compute = (2 · active weights · (B + P) + attention FLOPs) / (η_c · matmul peak)
    gpu     = smoothmax(memory, compute)
    kernels = Σ layers kernels_per_layer · kernel floor          (small kernels under CUDA graphs)
    step    = Σ stages gpu + kernels + TP all-reduce + EP all-to-all + PP hops + step overhead

Throughput at a concurrency spreads each request's prompt over its output steps, as chunked
prefill schedules it (prompt tokens per step ``B · prompt / steps``, at most the token budget).
The parameters (η_mem by memory class, η_moe, kernel floor, step overhead, η_c) are fitted per
engine by ``rigplan.calibration.serving_fit`` and carry over through the hardware's bandwidth,
matmul peak and the model's shapes; docs/speed-model.md explains the method.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from ..catalog.records import GPU, Model
from ..quant import FP4_QUANTS, Quant
from . import hardware
from .comm import ACTIVATION_BYTES_16, LinkModel
from .decode import smooth_max
from .profile import Spread
from .work import DeviceWork, ForwardWork, experts_active_fraction, experts_read_fraction

#: GPU kernels of one decoder layer under CUDA graphs, beyond the all-reduces [D: count of the
#: ops in vLLM's LlamaDecoderLayer forward: 2 fused add+RMSNorm, QKV GEMM, rotary, KV-cache
#: write, attention, O GEMM, gate-up GEMM, SiLU·mul, down GEMM].
KERNELS_DENSE_LAYER = 10
#: Extra kernels of a mixture-of-experts FFN over a dense one [D: vLLM FusedMoE — router GEMM,
#: top-k softmax, align/sort of token-expert pairs, two grouped GEMMs, activation, weighted sum,
#: shared-expert gate/up/down + activation + add — less the dense FFN's three].
KERNELS_MOE_EXTRA = 8
#: Extra kernels of multi-head latent attention [D: DeepSeek-V3 in vLLM/SGLang — q_a GEMM, q_a
#: norm, q_b GEMM, kv_a GEMM, kv_a norm, two absorbed BMMs (W_UK, W_UV)].
KERNELS_MLA_EXTRA = 7
#: Tensor parallel all-reduces per layer in the forward pass (Megatron: attention out, FFN out).
ALL_REDUCES_PER_LAYER = 2
#: Expert parallel exchanges per MoE layer: dispatch and combine all-to-all (DeepEP / NCCL).
ALL_TO_ALLS_PER_MOE_LAYER = 2
#: FP4 tensor cores (Blackwell) run dense E2M1 GEMMs at twice the FP8 rate [S: NVIDIA B200
#: datasheet: 9 PFLOPS FP4 vs 4.5 PFLOPS FP8 dense; RTX PRO 6000 Blackwell: 4000 vs 2000 AI TOPS
#: sparse].
FP4_OVER_FP8_RATE = 2.0
#: FP8 tensor cores run at twice the FP16 rate (Hopper, Ada, Blackwell datasheets), for catalogue
#: rows without an FP8 figure.
FP8_OVER_FP16_RATE = 2.0
#: Engine clock of sustained dense matrix work, MHz, where the vendor publishes it and it is far
#: below the clock the spec peak is computed at.  MI300X's spec peaks (FP8 2,614.9, BF16 1,307.4
#: TFLOPS) assume its 2,100 MHz boost clock; under dense MFMA load power management holds the
#: chip near 1.2 GHz: AMD's "Max-Achievable FLOPs" (ROCm/rocm-blogs measuring-max-achievable-
#: flops-part2 @8e011952, hipBLASLt db8e93b4) measured 1,273 TFLOPS FP8 at a median 1,230 MHz
#: and 708 BF16 at 1,207 MHz, 49 % and 54 % of the spec peaks.  The fitted tensor efficiency
#: applies on top of this clock ratio (other GPUs' gap between spec and sustained clock, not
#: published as a clock, stays inside that fitted share); without it 8x MI300X offline
#: throughput was over-predicted by ~50 % once the xGMI all-reduce was priced right.  By
#: architecture and GEMM precision ("fp8" or "16").
DENSE_MATRIX_CLOCK_MHZ: dict[str, dict[str, float]] = {"cdna3": {"fp8": 1230.0, "16": 1207.0}}


def dense_clock_fraction(gpu: GPU, precision: str) -> float:
    """Share of the spec peak's clock a GPU keeps under sustained dense matrix work (1 where not
    published)."""
    clocks = DENSE_MATRIX_CLOCK_MHZ.get(gpu.architecture)
    if not clocks or not gpu.boost_clock_mhz:
        return 1.0
    return min(1.0, clocks.get(precision, clocks["16"]) / gpu.boost_clock_mhz)


#: Architectures with FP4 tensor cores.
FP4_ARCHITECTURES = frozenset({"blackwell"})
#: FLOPs per weight per token (multiply + add).
FLOPS_PER_WEIGHT = 2
#: Attention FLOPs per cached token per query-head dimension (QK^T and ·V, 2 each).
ATTENTION_FLOPS_PER_KV = 4
#: (link inside a node, network, node of each pipeline stage's first GPU, whether each stage's
#: GPUs span nodes — a tensor-parallel group over the network, as SGLang's ``--tp 16 --nnodes 2``).
Links = tuple[LinkModel, LinkModel, tuple[int, ...], tuple[bool, ...]]
#: Up to this many sequences per step, per-user decode and output throughput share one range
#: (``ServingProfile.few_users_spread``); above it and offline, the other.  Held-out residuals
#: of the vLLM rows change sign between 8 and 16 users (≤ 8: 58 decode and throughput rows,
#: −0.70 … +0.43 in log, median ≈ +0.02; ≥ 16: every row below the estimate, −1.0 … −0.04, as
#: the 50 offline-maximum rows), and at one user the throughput is the decode less the prompt,
#: so one band per regime keeps the two ranges from contradicting each other [D].
FEW_USERS = 8
#: Between FEW_USERS and twice as many the band moves from one regime's to the other's in
#: log(concurrency), so one more user never narrows or widens the range in a step.
MANY_USERS = 2 * FEW_USERS
#: A band fitted on fewer rows than this is taken no narrower than the other band: a handful of
#: rows cannot promise a tighter range than the regime with more (SGLang's many-users band on 7
#: rows was −9 %/+45 % beside a 28 % held-out error) [D].
MIN_BAND_ROWS = 10
#: Exponent of the smooth maximum of memory and compute time inside one step (they overlap
#: almost fully in a GEMM; the same choice as the single-stream model).
OVERLAP_EXPONENT = 3.0


@dataclass(frozen=True, slots=True)
class ServingParameters:
    """Fitted (or prior) numbers of one serving engine, with their unit in the name."""

    memory_efficiency_hbm: float = 0.78
    memory_efficiency_gddr: float = 0.80
    #: Share of η_mem that fused-MoE kernels reach on expert weights (small grouped GEMMs).
    moe_memory_efficiency: float = 0.6
    #: GPU time of one small kernel (launch-to-launch inside a CUDA graph).
    kernel_floor_s: float = 4e-6
    #: Per step, outside the GPU work: scheduler, sampling, detokenisation not overlapped.
    step_overhead_s: float = 0.5e-3
    #: Achieved share of the dense matmul peak once the batch is compute-bound.
    tensor_efficiency: float = 0.55

    def memory_efficiency(self, gpu: GPU) -> float:
        return self.memory_efficiency_hbm if hardware.memory_class(gpu) == hardware.HBM else self.memory_efficiency_gddr

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class ServingBehaviour:
    """Facts of the engine's scheduler (not fitted), with the defaults it starts with."""

    #: Default max_num_seqs on GPUs with at least ``large_gpu_gib`` (vLLM: ≥ 70 GiB, not A100).
    max_num_seqs_large_gpu: int = 1024
    max_num_seqs_small_gpu: int = 256
    large_gpu_gib: float = 70.0
    #: Prompt + decode tokens one step may schedule (max_num_batched_tokens), by GPU size.
    max_num_batched_tokens_large_gpu: int = 8192
    max_num_batched_tokens_small_gpu: int = 2048
    #: Custom one-shot all-reduce where GPUs have P2P.
    custom_all_reduce: bool = True
    #: MoE experts spread over GPUs (all-to-all) rather than sharded by tensor parallelism.
    expert_parallel: bool = False

    def is_large(self, gpu: GPU) -> bool:
        # vLLM keeps the small defaults on A100s (vllm PR #17885: larger budgets slowed them).
        return gpu.memory_bytes >= self.large_gpu_gib * 2**30 and not gpu.id.startswith("a100")

    def max_num_seqs(self, gpu: GPU) -> int:
        return self.max_num_seqs_large_gpu if self.is_large(gpu) else self.max_num_seqs_small_gpu

    def token_budget(self, gpu: GPU) -> int:
        return self.max_num_batched_tokens_large_gpu if self.is_large(gpu) else self.max_num_batched_tokens_small_gpu


def few_users(concurrency: int | str) -> bool:
    """Whether ``concurrency`` ("max": offline) is in the few-users band (≤ :data:`FEW_USERS`)."""
    return isinstance(concurrency, int) and concurrency <= FEW_USERS


@dataclass(frozen=True, slots=True)
class ServingProfile:
    """Parameters of one serving engine with where they came from and the spread of residuals:
    one band for steps of at most :data:`FEW_USERS` sequences, one for larger batches and
    offline runs (and prefill), each applied to per-user decode and output throughput alike."""

    name: str
    version: str
    engines: tuple[str, ...]
    parameters: ServingParameters
    behaviour: ServingBehaviour
    few_users_spread: Spread
    many_users_spread: Spread
    rows: int = 0
    calibrated_kinds: tuple[str, ...] = ()
    source: str = ""
    notes: str = ""

    def label(self) -> str:
        """ "vllm-serving@fit-2026-12-06 (calibrated on 40 rows)" or "... (prior; range ...)"."""
        if self.rows:
            return f"{self.name}@{self.version} (calibrated on {self.rows} rows)"
        lo, hi = self.few_users_spread.factors()
        return f"{self.name}@{self.version} (no calibration rows; range -{1 - lo:.0%}/+{hi - 1:.0%})"

    def spread_at(self, concurrency: int | str) -> Spread:
        """The band of an estimate at ``concurrency`` sequences ("max": offline): the few-users
        band up to :data:`FEW_USERS`, the many-users band from :data:`MANY_USERS`, in between
        the two blended in log(concurrency); a band on fewer than :data:`MIN_BAND_ROWS` rows is
        no narrower than the other."""
        few = _no_narrower(self.few_users_spread, self.many_users_spread)
        many = _no_narrower(self.many_users_spread, self.few_users_spread)
        if not isinstance(concurrency, int) or concurrency >= MANY_USERS:
            return many
        if concurrency <= FEW_USERS:
            return few
        t = math.log(concurrency / FEW_USERS) / math.log(MANY_USERS / FEW_USERS)
        return Spread((1 - t) * few.low + t * many.low, (1 - t) * few.high + t * many.high)


def _no_narrower(band: Spread, other: Spread) -> Spread:
    if band.rows >= MIN_BAND_ROWS:
        return band
    return Spread(min(band.low, other.low), max(band.high, other.high), band.mape, band.rows)


@dataclass(frozen=True, slots=True)
class ServingStep:
    """One engine step on the slowest GPU and the rig (seconds), by term, for --explain."""

    total_s: float
    memory_s: float
    compute_s: float
    kernels_s: float
    comm_s: float
    overhead_s: float
    gpu: str


def kernels_per_layer(model: Model, layer: int) -> int:
    """Small kernels one decoder layer launches (dense, MoE and MLA layers differ)."""
    n = KERNELS_DENSE_LAYER
    if model.is_moe and layer >= model.moe_first_dense_layers:
        n += KERNELS_MOE_EXTRA
    if model.is_mla:
        n += KERNELS_MLA_EXTRA
    return n


@functools.lru_cache(maxsize=1024)
def _kernels(model: Model, layers: tuple[int, ...]) -> int:
    return sum(kernels_per_layer(model, i) for i in layers)


def decode_attention_flops_per_kv(model: Model) -> float:
    """Attention FLOPs per cached token per layer for one decoding query.

    MLA decodes in the absorbed form: scores over the latent and rope key (d_c + d_r) and the
    value product over the latent (d_c), per query head (DeepSeek-V2 paper, appendix B).
    """
    if model.is_mla:
        return 2 * model.num_heads * (2 * model.kv_lora_rank + model.qk_rope_head_dim)
    return ATTENTION_FLOPS_PER_KV * model.num_heads * (model.head_dim or model.hidden_size // model.num_heads)


def gemm_precision(quant: Quant, gpu: GPU) -> str:
    """The precision the GEMMs run in: "fp4", "fp8", "int8" or "16" (weight-only formats)."""
    if quant.id in FP4_QUANTS:
        if gpu.architecture in FP4_ARCHITECTURES:
            return "fp4"
        return "16"  # weight-only: Marlin dequantises to 16-bit
    if quant.id in ("fp8", "int8"):
        return quant.id
    return "16"


def matmul_flops(params: ServingParameters, quant: Quant, gpu: GPU) -> float:
    """Achieved matmul FLOP/s of the batch's GEMMs on ``gpu``."""
    precision = gemm_precision(quant, gpu)
    if precision == "fp4" and gpu.fp8_tensor_tflops:
        peak = hardware.matmul_peak_flops(gpu, fp16_accumulate=False, precision="fp8") * FP4_OVER_FP8_RATE
    elif precision == "fp4":
        peak = hardware.matmul_peak_flops(gpu, fp16_accumulate=False) * FP4_OVER_FP8_RATE * FP8_OVER_FP16_RATE
    else:
        peak = hardware.matmul_peak_flops(gpu, fp16_accumulate=False, quantized=True, precision=precision)
    return params.tensor_efficiency * peak * dense_clock_fraction(gpu, precision)


def _device_work_s(
    params: ServingParameters,
    dev: DeviceWork,
    model: Model,
    quant: Quant,
    kv_element_bytes: float,
    decode_seqs: float,
    context: int,
    prefill_tokens: float,
    prefill_position: float,
) -> tuple[float, float, float]:
    """(memory, compute, kernels) seconds of one GPU for one step."""
    gpu = dev.gpu
    tokens = decode_seqs + prefill_tokens
    touched = experts_read_fraction(model, tokens) if tokens > 0 else 0.0
    eta, bw = params.memory_efficiency(gpu), hardware.bandwidth_bytes_per_s(gpu)
    head = dev.output.nbytes if decode_seqs > 0 else 0.0
    kv = dev.kv_bytes(context, kv_element_bytes) * decode_seqs
    memory_s = (dev.dense.nbytes + head + kv) / (eta * bw)
    memory_s += dev.experts.nbytes * touched / (eta * params.moe_memory_efficiency * bw)
    active = dev.dense.total_elements + dev.experts.total_elements * experts_active_fraction(model)
    flops = FLOPS_PER_WEIGHT * (active * tokens + dev.output.total_elements * decode_seqs)
    layers = len(dev.kv_layers)
    flops += decode_attention_flops_per_kv(model) * context * layers * decode_seqs / dev.shard
    flops += ATTENTION_FLOPS_PER_KV * _prefill_width(model) * prefill_position * layers * prefill_tokens / dev.shard
    compute_s = flops / matmul_flops(params, quant, gpu)
    kernels_s = _kernels(model, dev.layers) * params.kernel_floor_s
    return memory_s, compute_s, kernels_s


def _prefill_width(model: Model) -> int:
    from .. import arch

    return arch.attention_width(model)


def _comm_s(
    behaviour: ServingBehaviour, stage: tuple[DeviceWork, ...], model: Model, tokens: float, link: LinkModel
) -> float:
    ranks = len(stage)
    if ranks <= 1 or tokens <= 0:
        return 0.0
    layers = stage[0].layers
    nbytes = tokens * model.hidden_size * ACTIVATION_BYTES_16
    total = ALL_REDUCES_PER_LAYER * len(layers) * link.all_reduce_s(nbytes, ranks)
    if behaviour.expert_parallel and model.is_moe:
        moe_layers = sum(1 for i in layers if i >= model.moe_first_dense_layers)
        routed = nbytes * model.moe_active_experts
        # Each rank sends the (n-1)/n of its tokens' expert copies that live elsewhere, and the
        # MoE all-reduce disappears (one of the two per layer).
        per = link.latency_s + routed * (ranks - 1) / ranks / link.bus_bytes_per_s
        total += moe_layers * (ALL_TO_ALLS_PER_MOE_LAYER * per - link.all_reduce_s(nbytes, ranks))
    return total


def serving_step(
    profile: ServingProfile,
    work: ForwardWork,
    model: Model,
    quant: Quant,
    kv_element_bytes: float,
    links: Links,
    decode_seqs: float,
    context: int,
    prefill_tokens: float = 0.0,
    prefill_position: float = 0.0,
) -> ServingStep:
    """One step of the rig with ``decode_seqs`` sequences at ``context`` and ``prefill_tokens``
    prompt tokens (at mean position ``prefill_position``) in the same batch.

    ``links`` is (link inside a node, network, node of each pipeline stage, whether it spans nodes).
    """
    params, behaviour = profile.parameters, profile.behaviour
    intra, network, stage_nodes, spanning = links
    comm_s = 0.0
    worst = (0.0, 0.0, 0.0, "")
    tokens = decode_seqs + prefill_tokens
    micro = micro_batches(len(work.stages), decode_seqs)
    stage_s: list[float] = []
    for index, stage in enumerate(work.stages):
        parts = [
            _device_work_s(
                params,
                d,
                model,
                quant,
                kv_element_bytes,
                decode_seqs / micro,
                context,
                prefill_tokens / micro,
                prefill_position,
            )
            for d in stage
        ]
        times = [smooth_max(m, c, p=OVERLAP_EXPONENT) + k for m, c, k in parts]
        slowest = max(range(len(stage)), key=lambda i: times[i])
        stage_s.append(times[slowest])
        if times[slowest] >= worst[0] + worst[1] + worst[2]:
            worst = (*parts[slowest], stage[slowest].gpu.id)
        spans = spanning[index] or work.tensor_parallel > len(stage)
        comm_s += _comm_s(behaviour, stage, model, tokens, network if spans else intra)
    # A micro-batch's round trip through the stages, or the busiest stage working through all of
    # them, whichever is longer (the pipeline's cycle; one stage without pipeline parallelism).
    gpus_s = max(sum(stage_s), micro * max(stage_s))
    for a, b in itertools.pairwise(stage_nodes):
        link = network if a != b else intra
        comm_s += link.transfer_s(tokens * model.hidden_size * ACTIVATION_BYTES_16)
    total = gpus_s + comm_s + params.step_overhead_s
    return ServingStep(total, worst[0], worst[1], worst[2], comm_s, params.step_overhead_s, worst[3])


def micro_batches(stages: int, decode_seqs: float) -> float:
    """Micro-batches in flight with ``stages`` pipeline stages: the engine splits the batch into
    one per stage (vLLM's virtual engines, TensorRT-LLM's in-flight micro-batches) so every stage
    works at once; fewer sequences than stages give one each."""
    if stages <= 1:
        return 1.0
    return float(stages) if decode_seqs <= 0 else min(float(stages), max(decode_seqs, 1.0))


@dataclass(frozen=True, slots=True)
class Schedule:
    """How a steady stream of requests at concurrency ``batch`` fills each step."""

    batch: int
    steps_per_round: float
    decode_per_step: float
    prefill_per_step: float


def chunked_schedule(budget: int, batch: int, prompt_tokens: int, output_tokens: int) -> Schedule:
    """Each request's prompt spread over its output steps, within the step token budget.

    A round is every one of the ``batch`` requests running once: ``batch · (prompt + output)``
    tokens in at least ``output`` steps and at most ``budget`` (max_num_batched_tokens) per step.
    """
    work = batch * (prompt_tokens + output_tokens)
    steps = max(float(output_tokens), math.ceil(work / budget))
    return Schedule(batch, steps, batch * output_tokens / steps, batch * prompt_tokens / steps)


def round_step_s(
    step: Callable[[float, int, float, float], float],
    plan: Schedule,
    budget: int,
    prompt_tokens: int,
    context: int,
    moe: bool,
) -> float:
    """Mean step time over a round of ``plan`` (seconds), prompts included as chunked prefill runs them.

    :func:`chunked_schedule` spreads the round's prompt tokens evenly over its steps.  For a
    mixture-of-experts model at low concurrency that is wrong in a way that matters: the engine
    runs a waiting prompt in chunks (one request's prompt, at most the step ``budget``), so most
    steps are pure decode and touch the experts of a few tokens, and a few steps carry a whole
    chunk; spreading a sliver of prompt over every step touches, on every step, experts only a
    chunk step touches (vLLM's DeepSeek-R1 recipe, 8000-token prompt at concurrency 1: 44 tok/s
    predicted spread, 63 chunked, 61 measured).  So for MoE models with fewer prompt tokens per
    step than a chunk, the chunks' extra time is shared over the round.  Dense models keep the
    spread step: there a step's cost is close to linear in its tokens once compute-bound, and the
    spread step's overlap of decode memory traffic with prompt compute matches the published
    rows (NIM Llama 3.3 70B at concurrency 5-250), which the chunked form missed by 10-20 % with
    the decode-fitted tensor efficiency — prompt GEMMs run nearer peak than that, a term not
    modelled yet.
    """
    position = prompt_tokens / 2
    chunk = float(min(budget, prompt_tokens))
    if not moe or plan.prefill_per_step <= 0 or plan.prefill_per_step >= chunk:
        return step(plan.decode_per_step, context, plan.prefill_per_step, position)
    base = step(plan.decode_per_step, context, 0.0, 0.0)
    with_chunk = step(plan.decode_per_step, context, chunk, position)
    return base + plan.prefill_per_step / chunk * (with_chunk - base)


def finite_run_throughput(throughput_at: Callable[[int], float], batch: int, requests: int) -> float:
    """Output tok/s of an offline run of ``requests`` identical requests at most ``batch`` at a time.

    With every request the same length (the synthetic ISL/OSL datasets of ``trtllm-bench`` and
    ``vllm bench throughput``), requests admitted together finish together, so the run goes in
    waves: ``requests // batch`` full ones and a last one of the rest, which takes about as many
    steps at a smaller batch.  ``throughput_at(b)`` is the steady output throughput at ``b``.
    trtllm-benchmarks' 1024-in/4096-out run (TRT-LLM 0.16, 8x H100): 800 requests, 533 in the
    KV pool at once (2,730,752 tokens / 5,120), so two waves of 533 and 267 -> 0.75 of the
    steady rate; measured / steady prediction was 0.76 there.
    """
    batch = max(1, min(batch, requests))
    full, rest = divmod(requests, batch)
    # a wave of b requests of L output tokens takes b·L / throughput(b); L cancels out
    time = full * batch / throughput_at(batch) + (rest / throughput_at(rest) if rest else 0.0)
    return requests / time
