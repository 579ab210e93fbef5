"""One optimizer step of training: compute, the communication compute cannot hide, the bubble.

Pieces (each a function below), per micro-batch on one GPU of the busiest pipeline stage:

* compute (:func:`_compute`): matmuls at the framework's effective rate (MoE expert GEMMs see
  only the tokens routed to each local expert), causal FlashAttention, elementwise traffic,
  QLoRA dequantisation;
* model-parallel communication (:func:`_model_parallel`): TP all-reduces, PP sends, context-
  parallel ring exchange of K/V (hidden behind attention where it fits), expert-parallel
  all-to-all (dispatch and combine, forward and backward);
* data-parallel communication (:func:`_data_parallel`): ZeRO / FSDP gathers and reduce-scatters,
  gradient all-reduce behind the last backward;
* the optimizer step and CPU offload (:func:`_optimizer`);
* the pipeline bubble: (PP − 1) / VP micro-batch slots (Narayanan et al. 2021 §2.2, interleaved).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.records import GPU
from ..units import GB, TERA
from .frameworks import NEUTRAL, FrameworkProfile
from .memory import (
    FLOAT32_BYTES,
    GRADIENT_BYTES,
    WEIGHT_BYTES,
    activation_bytes_per_token_layer,
    gpu_params,
    optimizer_bytes_per_param,
)
from .setup import Checkpointing, Layout, Method, Precision, TrainingSetup, stage_layers
from .shape import SIXTEEN_BIT_BYTES, ModelShape, lora_linears, lora_parameters
from .speed import (
    ATTENTION_FLOPS_PER_TOKEN_LAYER,
    ATTENTION_FORWARD_SHARE,
    BACKWARD_FLOPS_PER_PARAM,
    BACKWARD_SHARE,
    CAUSAL_FRACTION,
    DEQUANT_PASSES,
    FORWARD_FLOPS_PER_PARAM,
    FROZEN_BACKWARD_FLOPS_PER_PARAM,
    HOST_ADAM_BYTES_PER_S,
    NF4_DEQUANT_BYTES_PER_PARAM,
    RECOMPUTE_TRAFFIC_SHARE,
    TP_ALLREDUCES_PER_LAYER,
    TP_ALLREDUCES_PER_RECOMPUTE,
    Interconnect,
    TrainingProfile,
    TrainingSpeed,
    _collective_s,
    _group,
    model_flops_per_token,
    nvlink_span,
    peak_flops,
)

# MoE token dispatch: an all-to-all before the experts and one after (combine), in the forward
# and again in the backward (Megatron-Core MoE token dispatcher; DeepEP), repeated by a full
# recompute.  Assumed not overlapped with compute (overlap is an opt-in in Megatron-Core 0.13+).
MOE_ALL_TO_ALLS_PER_LAYER = 4
MOE_ALL_TO_ALLS_PER_RECOMPUTE = 2
# All-to-all reaches less bus bandwidth than ring collectives (many small peer messages): about
# half of the NVLink ring figure [estimate; DeepEP README reports 153–158 GB/s intranode
# dispatch/combine on H800 NVLink of 160 GB/s per direction unidirectional, i.e. near line rate
# for large batches, less for small — 0.5 is a midpoint].
ALL_TO_ALL_EFFICIENCY = 0.5
# Context parallelism (ring attention): each layer passes the local K and V chunk around the ring
# (CP − 1 steps) in the forward, and K, V and their gradients in the backward (Megatron-Core
# context parallel; Liu et al. 2023 "Ring Attention").  Overlapped with the attention compute.
CP_PASSES_FORWARD = 2  # K and V
CP_PASSES_BACKWARD = 4  # K, V, dK, dV


@dataclass(frozen=True, slots=True)
class _Compute:
    matmul_s: float
    attention_s: float
    elementwise_s: float
    dequantize_s: float
    matmul_efficiency: float
    matmul_rate: float

    @property
    def total_s(self) -> float:
        return self.matmul_s + self.attention_s + self.elementwise_s + self.dequantize_s


def _busiest_layers(shape: ModelShape, pp: int) -> int:
    return max(stage_layers(shape.num_layers, pp))


def _expert_tokens(shape: ModelShape, tokens: float, layout: Layout) -> float:
    """Tokens each local expert multiplies per micro-batch: a rank's tokens × k / E, gathered from
    the EP ranks that share the expert (balanced routing, as the published MoE benchmarks force)."""
    if shape.num_experts <= 1:
        return tokens
    return tokens * layout.tensor_parallel * shape.active_experts * layout.expert_parallel / shape.num_experts


def _adapter_traffic(shape: ModelShape, setup: TrainingSetup, act_b: int, passes: float) -> float:
    """Bytes per token per layer the LoRA adapters' activations move (in, out and the rank-r middle)."""
    per_layer = sum(
        lin.copies * (lin.in_features + lin.out_features + 2 * setup.lora_rank)
        for lin in lora_linears(shape, setup.lora_targets)
    )
    return per_layer * act_b * (passes / FORWARD_FLOPS_PER_PARAM)


def _compute(
    shape: ModelShape,
    setup: TrainingSetup,
    layout: Layout,
    gpu: GPU,
    profile: TrainingProfile,
    framework: FrameworkProfile,
) -> _Compute:
    """Time of one micro-batch's forward + backward compute on one GPU of the busiest stage."""
    tp, pp = layout.tensor_parallel, layout.pipeline_parallel
    f_mm, f_attn = peak_flops(gpu, setup.precision, framework)
    mm_factor, attn_factor = profile.factors(gpu.architecture)
    bandwidth = gpu.bandwidth_gb_per_s * GB
    tokens = setup.micro_batch_tokens / layout.context_parallel
    layers = _busiest_layers(shape, pp)
    full = setup.method.trains_base
    recompute = setup.checkpointing is Checkpointing.FULL
    act_b = FLOAT32_BYTES if setup.precision is Precision.F32 else 2

    head = shape.vocab_size * shape.hidden_size
    expert_active = shape.active_experts * shape.expert_params / shape.num_experts if shape.num_experts else 0.0
    block_dense = (shape.matmul_params_per_token - head - expert_active) / shape.num_layers
    block_expert = expert_active / shape.num_layers
    lora = 0 if full else lora_parameters(shape, setup.lora_rank, setup.lora_targets) * layers / shape.num_layers
    backward = BACKWARD_FLOPS_PER_PARAM if full else FROZEN_BACKWARD_FLOPS_PER_PARAM
    forwards = FORWARD_FLOPS_PER_PARAM * (2 if recompute else 1)
    passes = forwards + backward
    adapter_passes = forwards + BACKWARD_FLOPS_PER_PARAM

    def efficiency(t: float) -> float:
        return mm_factor * profile.matmul_efficiency * t / (t + profile.matmul_half_tokens)

    eta = efficiency(tokens)
    eta_expert = efficiency(_expert_tokens(shape, tokens, layout))
    eta_expert *= framework.moe_factor
    dense_flops = tokens * (passes * (block_dense * layers + head) + adapter_passes * lora) / tp
    expert_flops = tokens * passes * block_expert * layers / tp
    t_mm = dense_flops / (f_mm * eta) + (expert_flops / (f_mm * eta_expert) if expert_flops else 0.0)

    attn_conv = ATTENTION_FLOPS_PER_TOKEN_LAYER * layers * shape.attention_width * setup.seq_len
    attn_share = 1 + (ATTENTION_FORWARD_SHARE if setup.checkpointing is not Checkpointing.NONE else 0)
    attn_flops = tokens * attn_conv * attn_share * CAUSAL_FRACTION / tp
    t_attn = attn_flops / (f_attn * profile.attention_efficiency * attn_factor * framework.compute_factor)

    kept, _ = activation_bytes_per_token_layer(shape, setup, tp)
    scores = 0 if setup.flash_attention else shape.num_heads * setup.seq_len * act_b / tp
    traffic = (kept - scores) * profile.elementwise_traffic * (1 + (RECOMPUTE_TRAFFIC_SHARE if recompute else 0))
    adapters = 0.0 if full else _adapter_traffic(shape, setup, act_b, adapter_passes) / tp
    t_ew = tokens * layers * (traffic + adapters) / bandwidth / framework.compute_factor
    t_dequant = 0.0
    if setup.method is Method.QLORA:
        dequant_passes = DEQUANT_PASSES + (1 if recompute else 0)
        stage_linear = shape.block_linear_params * layers / shape.num_layers
        t_dequant = dequant_passes * stage_linear / tp * NF4_DEQUANT_BYTES_PER_PARAM / bandwidth
    return _Compute(t_mm, t_attn, t_ew, t_dequant, eta, f_mm)


@dataclass(frozen=True, slots=True)
class _ModelParallel:
    tensor_s: float
    pipeline_send_s: float
    context_s: float
    expert_s: float
    routing_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.tensor_s + self.pipeline_send_s + self.context_s + self.expert_s + self.routing_s


def _model_parallel(
    shape: ModelShape,
    setup: TrainingSetup,
    layout: Layout,
    link: Interconnect,
    compute: _Compute,
    framework: FrameworkProfile = NEUTRAL,
) -> _ModelParallel:
    """TP, PP, CP and EP communication of one micro-batch on the critical path, and the MoE
    routing time outside the GEMMs (:func:`_moe_routing_s`)."""
    tp, pp, cp, ep = layout.tensor_parallel, layout.pipeline_parallel, layout.context_parallel, layout.expert_parallel
    gpn = nvlink_span(layout, link)
    tokens = setup.micro_batch_tokens / cp
    layers = _busiest_layers(shape, pp)
    recompute = setup.checkpointing is Checkpointing.FULL
    act_b = FLOAT32_BYTES if setup.precision is Precision.F32 else 2
    message = tokens * shape.hidden_size * act_b
    tp_group = _group(tp, gpn, layout, link)
    collectives = TP_ALLREDUCES_PER_LAYER + (TP_ALLREDUCES_PER_RECOMPUTE if recompute else 0)
    t_tp = layers * collectives * _collective_s(message, tp, tp_group.bytes_per_s, tp_group.latency_s, all_reduce=True)
    t_pp = 0.0
    if pp > 1:
        crosses_nodes = tp * cp * layout.data_parallel >= gpn
        p2p = (link.node_network_bytes_per_s / layout.gpus_per_node) if crosses_nodes else link.intra_node_bytes_per_s
        latency = link.network_latency_s if crosses_nodes else link.intra_node_latency_s
        # Interleaved schedules send once per model chunk.
        t_pp = 2 * layout.virtual_pipeline * (message / (tp if setup.sequence_parallel else 1) / p2p + latency)
    t_cp = 0.0
    if cp > 1:
        cp_group = _group(cp, max(1, gpn // tp), layout, link)
        kv_chunk = tokens * shape.kv_width * act_b / tp
        ring = (cp - 1) * kv_chunk * (CP_PASSES_FORWARD + CP_PASSES_BACKWARD) / cp_group.bytes_per_s
        t_cp = max(0.0, layers * ring - compute.attention_s)
    t_ep = 0.0
    if ep > 1 and shape.moe_layers:
        moe_layers = shape.moe_layers * layers / shape.num_layers
        ep_group = _group(ep, max(1, gpn // tp), layout, link)
        routed = tokens / tp * shape.active_experts * shape.hidden_size * act_b * (ep - 1) / ep
        calls = MOE_ALL_TO_ALLS_PER_LAYER + (MOE_ALL_TO_ALLS_PER_RECOMPUTE if recompute else 0)
        t_ep = moe_layers * calls * (routed / (ep_group.bytes_per_s * ALL_TO_ALL_EFFICIENCY) + ep_group.latency_s)
    return _ModelParallel(t_tp, t_pp, t_cp, t_ep, _moe_routing_s(shape, setup, layers, link, framework))


def _moe_routing_s(
    shape: ModelShape, setup: TrainingSetup, layers: int, link: Interconnect, framework: FrameworkProfile
) -> float:
    """Host-bound routing time of one micro-batch's MoE layers on the busiest stage: the
    framework's fitted ``moe_layer_s`` per layer for dropless routing; none with token drop (fixed
    capacity, no token-count sync) or on NVL72 racks (CUDA graphs, see
    :class:`~.frameworks.FrameworkProfile`)."""
    if not shape.moe_layers or link.nvlink_domain or not setup.moe_dropless:
        return 0.0
    return shape.moe_layers * layers / shape.num_layers * framework.moe_layer_s


@dataclass(frozen=True, slots=True)
class _DataParallel:
    per_microbatch_s: float  # ZeRO-2/3 traffic of every micro-batch (overlappable)
    overlap_step_s: float  # gradient sync overlappable with the last backward
    exposed_step_s: float  # parameter all-gather after the optimizer step

    def exposed(self, compute_s: float, units: float, exposed_fraction: float) -> tuple[float, float]:
        """(exposed per micro-batch, exposed per step)."""
        mb = self.per_microbatch_s
        per_mb = max(mb - compute_s, mb / units, exposed_fraction * mb) if mb else 0.0
        ov = self.overlap_step_s
        per_step = max(ov - BACKWARD_SHARE * compute_s, ov / units) if ov else 0.0
        return per_mb, per_step + self.exposed_step_s


def _trained_params(shape: ModelShape, setup: TrainingSetup, layout: Layout) -> tuple[float, float]:
    """(parameters one GPU holds, parameters it trains) on the last pipeline stage."""
    params = gpu_params(shape, layout.pipeline_parallel - 1, layout)
    if setup.method.trains_base:
        return params, params
    layers = stage_layers(shape.num_layers, layout.pipeline_parallel)[-1]
    lora = lora_parameters(shape, setup.lora_rank, setup.lora_targets) * layers / shape.num_layers
    return params, lora / layout.tensor_parallel


def _data_parallel(shape: ModelShape, setup: TrainingSetup, layout: Layout, link: Interconnect) -> _DataParallel:
    """ZeRO / FSDP / DDP traffic of one optimizer step (over the data × context-parallel ranks)."""
    dp = layout.data_parallel * layout.context_parallel
    gpn = nvlink_span(layout, link)
    params_gpu, trained = _trained_params(shape, setup, layout)
    w_b, g_b = WEIGHT_BYTES[setup.precision], GRADIENT_BYTES[setup.precision]
    if setup.method is Method.QLORA:
        dense = shape.block_linear_params / shape.total_params
        gather_bytes = params_gpu * dense * shape.nf4_linear_bytes / max(shape.block_linear_params, 1)
        gather_bytes += params_gpu * (1 - dense) * SIXTEEN_BIT_BYTES
    else:
        gather_bytes = params_gpu * w_b
    grad_bytes = trained * g_b
    dp_ranks_per_node = max(1, gpn // min(gpn, layout.tensor_parallel))
    z, hybrid = setup.zero_stage, setup.hybrid_shard
    shard = min(dp, dp_ranks_per_node) if hybrid else dp
    sg = _group(shard, dp_ranks_per_node, layout, link)
    dg = _group(dp, dp_ranks_per_node, layout, link)
    if dp <= 1:
        return _DataParallel(0.0, 0.0, 0.0)
    if z >= 3:
        per_mb = 2 * _collective_s(gather_bytes, shard, sg.bytes_per_s, sg.latency_s)
        per_mb += _collective_s(grad_bytes, shard, sg.bytes_per_s, sg.latency_s)
        overlap = 0.0
        if hybrid and dp > shard:
            rep = _group(dp // shard, 1, layout, link)
            overlap = _collective_s(grad_bytes / shard, rep.ranks, rep.bytes_per_s, rep.latency_s, all_reduce=True)
        return _DataParallel(per_mb, overlap, 0.0)
    gather = _collective_s(trained * w_b, dp, dg.bytes_per_s, dg.latency_s)
    if z == 2:
        return _DataParallel(_collective_s(grad_bytes, dp, dg.bytes_per_s, dg.latency_s), 0.0, gather)
    if z == 1:
        return _DataParallel(0.0, _collective_s(grad_bytes, dp, dg.bytes_per_s, dg.latency_s), gather)
    return _DataParallel(0.0, _collective_s(grad_bytes, dp, dg.bytes_per_s, dg.latency_s, all_reduce=True), 0.0)


def _optimizer(
    shape: ModelShape, setup: TrainingSetup, layout: Layout, gpu: GPU, link: Interconnect
) -> tuple[float, float, float]:
    """(optimizer step s, host copies per step s, host copies per micro-batch s)."""
    dp = layout.data_parallel * layout.context_parallel
    _, trained = _trained_params(shape, setup, layout)
    w_b, g_b = WEIGHT_BYTES[setup.precision], GRADIENT_BYTES[setup.precision]
    o_b = optimizer_bytes_per_param(setup.precision, setup.optimizer)
    shard = dp if (dp > 1 and setup.zero_stage >= 1) else 1
    opt_shard = trained / shard
    if setup.offload != "cpu":
        return opt_shard * (w_b + g_b + 2 * o_b + w_b) / (gpu.bandwidth_gb_per_s * GB), 0.0, 0.0
    # CPU Adam over the GPUs of a node sharing the host's memory bandwidth; gradients down and
    # updated weights up over PCIe once per step.
    t_opt = opt_shard * (g_b + 2 * o_b + w_b) / HOST_ADAM_BYTES_PER_S * min(layout.gpus_per_node, layout.gpus)
    t_copy = opt_shard * (g_b + w_b) / link.host_link_bytes_per_s
    per_mb = 0.0
    if setup.zero_stage >= 2:
        per_mb += trained / shard * g_b / link.host_link_bytes_per_s
    if setup.zero_stage >= 3:
        params_gpu, _ = _trained_params(shape, setup, layout)
        per_mb += 2 * params_gpu * w_b / shard / link.host_link_bytes_per_s
    return t_opt, t_copy, per_mb


def estimate_training_speed(
    shape: ModelShape,
    setup: TrainingSetup,
    layout: Layout,
    gpu: GPU,
    link: Interconnect,
    profile: TrainingProfile,
    framework: FrameworkProfile = NEUTRAL,
) -> TrainingSpeed:
    """Tokens per second, MFU and the time of one optimizer step (pure).

    Raises:
        UnsupportedError: no peak FLOP figure for the GPU at this precision.
    """
    compute = _compute(shape, setup, layout, gpu, profile, framework)
    mp = _model_parallel(shape, setup, layout, link, compute, framework)
    dpc = _data_parallel(shape, setup, layout, link)
    units = max(1.0, float(_busiest_layers(shape, layout.pipeline_parallel)))  # FSDP wraps each block
    exposed_mb, exposed_step = dpc.exposed(compute.total_s, units, profile.exposed_comm_fraction)
    t_opt, t_copy, offload_mb = _optimizer(shape, setup, layout, gpu, link)
    m = setup.grad_accumulation
    t_mb = compute.total_s + mp.total_s + exposed_mb + offload_mb
    bubble = (layout.pipeline_parallel - 1) / layout.virtual_pipeline * t_mb
    step = m * t_mb + bubble + exposed_step + t_opt + t_copy
    tokens_per_step = m * setup.micro_batch * layout.data_parallel * setup.seq_len
    tps = tokens_per_step / step
    per_gpu = tps / layout.gpus
    _, bf16_peak = peak_flops(gpu, Precision.BF16 if setup.precision.low_bit else setup.precision)
    mfu = model_flops_per_token(shape, setup) * per_gpu / bf16_peak
    breakdown = {
        "matmul": m * compute.matmul_s,
        "attention": m * compute.attention_s,
        "elementwise": m * compute.elementwise_s,
        "dequantize": m * compute.dequantize_s,
        "tensor_parallel": m * mp.tensor_s,
        "pipeline_send": m * mp.pipeline_send_s,
        "context_parallel": m * mp.context_s,
        "expert_all_to_all": m * mp.expert_s,
        "expert_routing": m * mp.routing_s,
        "pipeline_bubble": bubble,
        "data_parallel_exposed": m * exposed_mb + exposed_step,
        "optimizer": t_opt,
        "offload_copies": t_copy + m * offload_mb,
    }
    derivation = (
        f"step = {m} micro-batches × {t_mb * 1e3:.1f} ms (compute {compute.total_s * 1e3:.1f}, "
        f"TP {mp.tensor_s * 1e3:.1f}, "
        f"PP send {mp.pipeline_send_s * 1e3:.1f}, CP {mp.context_s * 1e3:.1f}, EP all-to-all {mp.expert_s * 1e3:.1f}, "
        f"MoE routing {mp.routing_s * 1e3:.1f}, "
        f"exposed ZeRO/FSDP {exposed_mb * 1e3:.1f}) + bubble {bubble * 1e3:.1f} ms + "
        f"exposed gradient sync {exposed_step * 1e3:.1f} ms + optimizer {(t_opt + t_copy) * 1e3:.1f} ms; "
        f"matmul efficiency {compute.matmul_efficiency:.2f} of {compute.matmul_rate / TERA:.0f} TFLOP/s, "
        f"profile {profile.name}, framework {framework.name}"
    )
    return TrainingSpeed(tps, per_gpu, mfu, step, tokens_per_step, breakdown, derivation)
