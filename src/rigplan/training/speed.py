"""Training throughput: compute at fitted efficiencies plus the communication compute cannot hide.

Per micro-batch on one GPU (the busiest pipeline stage):

* matmuls: 6·N FLOPs per token for full training (forward 2N, backward 4N; Transformer Math
  101, Kaplan et al. 2020), 4·N for a frozen base (no weight gradients) plus 6·N_lora, plus one
  more forward under full recomputation (Korthikanti et al. 2022 §5) — at the GPU's dense
  tensor peak × a matmul efficiency that rises with the micro-batch's tokens;
* attention: 12·L·d_attn·s per token over fwd+bwd (PaLM App. B), half of it for a causal mask
  as FlashAttention computes it, at a fitted attention efficiency;
* elementwise work (norms, activations, residuals, casts): memory traffic proportional to the
  activations a layer keeps, at the GPU's memory bandwidth — this is what makes small models and
  high-FLOP/byte GPUs (H100) reach a lower MFU;
* communication that is not hidden: ZeRO/FSDP gathers and reduce-scatters (hidden behind the
  micro-batch's compute except one block's worth), gradient all-reduce (hidden behind the last
  backward), tensor-parallel all-reduces (on the critical path), pipeline sends and the 1F1B
  bubble ((p − 1) micro-batch slots per step; Narayanan et al. 2021 §2.2);
* the optimizer step (memory bound) and, with CPU offload, the host step and PCIe copies.

The efficiencies come from ``profiles/training.toml`` (fitted by :mod:`rigplan.training.fit`
to llm-foundry and torchtitan measurements).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..catalog.records import GPU
from ..errors import UnsupportedError
from ..units import GB, TERA
from .memory import (
    FLOAT32_BYTES,
    GRADIENT_BYTES,
    WEIGHT_BYTES,
    activation_bytes_per_token_layer,
    optimizer_bytes_per_param,
    stage_params,
)
from .setup import Checkpointing, Layout, Method, Precision, TrainingSetup
from .shape import SIXTEEN_BIT_BYTES, ModelShape, lora_linears, lora_parameters

# ---- FLOP accounting ----------------------------------------------------------------------
# Forward FLOPs per parameter per token (a multiply-add), backward twice that (TM101 §Compute).
FORWARD_FLOPS_PER_PARAM = 2
BACKWARD_FLOPS_PER_PARAM = 4
# A frozen weight still needs the gradient with respect to its input, not its own: 2 of the 4.
FROZEN_BACKWARD_FLOPS_PER_PARAM = 2
# Attention score and value FLOPs per token per layer over fwd + bwd: 12·d_attn·s (PaLM App. B,
# "6N + 12·L·H·Q·T"; the MFU convention of llm-foundry and torchtitan); forward is a third.
ATTENTION_FLOPS_PER_TOKEN_LAYER = 12
ATTENTION_FORWARD_SHARE = 1 / 3
# A causal mask lets FlashAttention skip the upper triangle: half the convention's FLOPs run.
CAUSAL_FRACTION = 0.5
# Megatron TP: two all-reduces in the forward and two in the backward of every layer, two more
# when the forward is recomputed (Narayanan et al. 2021 §2.3; Korthikanti et al. §5).
TP_ALLREDUCES_PER_LAYER = 4
TP_ALLREDUCES_PER_RECOMPUTE = 2
# Elementwise traffic: the forward is a third of forward + backward; recomputation repeats it.
RECOMPUTE_TRAFFIC_SHARE = 1 / 3
# NF4 weights are dequantised in the forward and the backward, and again when recomputed.
DEQUANT_PASSES = 2
# Catalogue NVLink / Infinity Fabric figures are bidirectional; a collective uses one direction.
DIRECTIONS = 2
# Backward work as a share of a micro-batch's compute (4 of 6 FLOPs per parameter): what a
# gradient all-reduce of the last micro-batch can hide behind (PyTorch DDP buckets).
BACKWARD_SHARE = BACKWARD_FLOPS_PER_PARAM / (FORWARD_FLOPS_PER_PARAM + BACKWARD_FLOPS_PER_PARAM)

# ---- precision ----------------------------------------------------------------------------
# FP8 linears (Transformer Engine) run at the FP8 peak but reach a smaller share of it: llm-foundry
# H100 MPT-3B/1B (2048–512 tokens) gain ×1.16–1.35 end to end over bf16, not ×2
# (mosaicml/llm-foundry scripts/train/benchmarking/README.md @061f2c7c, "H100 80GB BF16/FP8").
FP8_MATMUL_EFFICIENCY_RATIO = 0.6

# ---- QLoRA / LoRA extra traffic -------------------------------------------------------------
# bitsandbytes dequantises each NF4 linear to 16-bit before its matmul, in the forward, the
# backward and any recomputation: read 4.127 bits, write 2 bytes per weight (bitsandbytes
# functional.dequantize_4bit; perf-model.md §3.2 notes bnb-nf4 runs no faster than bf16).
NF4_DEQUANT_BYTES_PER_PARAM = 4.127 / 8 + 2

# ---- optimizer step and CPU offload ---------------------------------------------------------
# Host memory bandwidth a CPU Adam step streams at (DeepSpeed CPUAdam is bandwidth bound):
# a 8-channel DDR4-3200 server socket gives 204.8 GB/s peak, of which ~60% is sustained.
HOST_ADAM_BYTES_PER_S = 120 * GB
# Host ↔ GPU copies of gradients and weights under offload: PCIe 4.0 x16 (31.5 GB/s per
# direction) at the 0.78 NCCL reached over PCIe (perf-model.md §6.1 [S:TINYGRAD-P2P]).
PCIE_GEN_X16_BYTES_PER_S = {3: 15.75 * GB, 4: 31.5 * GB, 5: 63.0 * GB}
PCIE_EFFICIENCY = 24.5 / 31.5


@dataclass(frozen=True, slots=True)
class Interconnect:
    """Link speeds training communication uses (NCCL bus bandwidths, seconds of latency)."""

    intra_node_bytes_per_s: float  # busbw among the GPUs of one node
    intra_node_latency_s: float
    node_network_bytes_per_s: float  # all NICs of one node together, achieved
    network_latency_s: float
    host_link_bytes_per_s: float  # one GPU to host memory (offload)
    description: str


@dataclass(frozen=True, slots=True)
class TrainingProfile:
    """Fitted efficiencies (profiles/training.toml)."""

    name: str
    matmul_efficiency: float  # share of the dense tensor peak large matmuls reach
    exposed_comm_fraction: float  # share of per-micro-batch ZeRO-2/3 traffic compute does not hide
    attention_efficiency: float  # share of the peak causal FlashAttention reaches
    elementwise_traffic: float  # bytes moved per byte of activations a layer keeps (fwd+bwd)
    matmul_half_tokens: float = 512.0  # micro-batch tokens at which matmuls reach half of the above
    # GPU architecture → (matmul, attention) share of the Ampere-fitted efficiencies its
    # kernels reach (e.g. FlashAttention-2 does not use Hopper's wgmma); 1.0 where not fitted.
    architecture_factors: tuple[tuple[str, float, float], ...] = ()
    mape: float | None = None
    rows: int = 0

    def factors(self, architecture: str) -> tuple[float, float]:
        for arch, mm, attn in self.architecture_factors:
            if arch == architecture:
                return mm, attn
        return 1.0, 1.0


@dataclass(frozen=True, slots=True)
class TrainingSpeed:
    tokens_per_s: float
    tokens_per_s_per_gpu: float
    mfu: float
    step_time_s: float
    tokens_per_step: int
    breakdown_s: dict[str, float] = field(default_factory=dict)  # per optimizer step
    derivation: str = ""


def peak_flops(gpu: GPU, precision: Precision) -> tuple[float, float]:
    """(matmul peak, attention peak) in FLOP/s for ``precision`` on ``gpu``.

    Raises:
        UnsupportedError: the catalogue has no dense tensor figure for it (speed unknown).
    """
    bf16 = gpu.fp16_tensor_tflops
    if precision is Precision.F32:
        if gpu.fp32_tflops is None:
            raise UnsupportedError(f"{gpu.id}: no FP32 throughput in the catalogue; training speed unknown")
        return gpu.fp32_tflops * TERA, gpu.fp32_tflops * TERA
    if bf16 is None:
        raise UnsupportedError(f"{gpu.id}: no dense FP16/BF16 tensor figure in the catalogue; training speed unknown")
    if precision is Precision.FP8:
        if gpu.fp8_tensor_tflops is None:
            raise UnsupportedError(f"precision fp8: {gpu.id} has no FP8 tensor cores")
        return gpu.fp8_tensor_tflops * TERA * FP8_MATMUL_EFFICIENCY_RATIO, bf16 * TERA
    return bf16 * TERA, bf16 * TERA


def model_flops_per_token(shape: ModelShape, setup: TrainingSetup) -> float:
    """FLOPs per token the MFU convention counts (no recomputation): 6N + 12·L·d_attn·s
    (PaLM App. B); a frozen base counts 4N and its adapters 6·N_lora."""
    attention = ATTENTION_FLOPS_PER_TOKEN_LAYER * shape.num_layers * shape.attention_width * setup.seq_len
    n = shape.matmul_params_per_token
    if setup.method.trains_base:
        return (FORWARD_FLOPS_PER_PARAM + BACKWARD_FLOPS_PER_PARAM) * n + attention
    lora = lora_parameters(shape, setup.lora_rank, setup.lora_targets)
    return (
        (FORWARD_FLOPS_PER_PARAM + FROZEN_BACKWARD_FLOPS_PER_PARAM) * n
        + (FORWARD_FLOPS_PER_PARAM + BACKWARD_FLOPS_PER_PARAM) * lora
        + attention
    )


def _collective_s(
    nbytes: float, ranks: int, bytes_per_s: float, latency_s: float, *, all_reduce: bool = False
) -> float:
    """Ring all-gather / reduce-scatter (all-reduce: both) of ``nbytes`` per rank
    (nccl-tests doc/PERFORMANCE.md: busbw = algbw · (n−1)/n, all-reduce · 2(n−1)/n)."""
    if ranks <= 1 or nbytes <= 0:
        return 0.0
    factor = (2 if all_reduce else 1) * (ranks - 1) / ranks
    return nbytes * factor / bytes_per_s + latency_s * (1 + math.log2(ranks))


@dataclass(frozen=True, slots=True)
class _Group:
    ranks: int
    bytes_per_s: float
    latency_s: float


def _group(ranks: int, ranks_per_node: int, layout: Layout, link: Interconnect) -> _Group:
    """Bandwidth of a process group: NVLink/PCIe inside one node; across nodes the group's share
    of each node's NICs (its ranks on a node out of all GPUs of that node run at once)."""
    ranks_per_node = max(1, min(ranks, ranks_per_node))
    if ranks <= ranks_per_node:
        return _Group(ranks, link.intra_node_bytes_per_s, link.intra_node_latency_s)
    share = link.node_network_bytes_per_s * ranks_per_node / layout.gpus_per_node
    return _Group(ranks, min(link.intra_node_bytes_per_s, share), link.network_latency_s)


def estimate_training_speed(
    shape: ModelShape,
    setup: TrainingSetup,
    layout: Layout,
    gpu: GPU,
    link: Interconnect,
    profile: TrainingProfile,
) -> TrainingSpeed:
    """Tokens per second, MFU and the time of one optimizer step (pure).

    Raises:
        UnsupportedError: no peak FLOP figure for the GPU at this precision.
    """
    tp, pp, dp = layout.tensor_parallel, layout.pipeline_parallel, layout.data_parallel
    gpn = layout.gpus_per_node
    f_mm, f_attn = peak_flops(gpu, setup.precision)
    mm_factor, attn_factor = profile.factors(gpu.architecture)
    bandwidth = gpu.bandwidth_gb_per_s * GB
    tokens = setup.micro_batch_tokens
    layers = shape.num_layers / pp
    full = setup.method.trains_base
    recompute = setup.checkpointing is Checkpointing.FULL
    act_b = FLOAT32_BYTES if setup.precision is Precision.F32 else 2

    # -- compute of one micro-batch on the last (busiest) stage --------------------------------
    head = shape.vocab_size * shape.hidden_size
    block_mm = (shape.matmul_params_per_token - head) / shape.num_layers
    stage_mm = block_mm * layers + head
    lora = 0 if full else lora_parameters(shape, setup.lora_rank, setup.lora_targets) / pp
    backward = BACKWARD_FLOPS_PER_PARAM if full else FROZEN_BACKWARD_FLOPS_PER_PARAM
    passes = FORWARD_FLOPS_PER_PARAM * (2 if recompute else 1) + backward
    adapter_passes = FORWARD_FLOPS_PER_PARAM * (2 if recompute else 1) + BACKWARD_FLOPS_PER_PARAM
    mm_flops = tokens * (passes * stage_mm + adapter_passes * lora) / tp
    attn_flops_conv = ATTENTION_FLOPS_PER_TOKEN_LAYER * layers * shape.attention_width * setup.seq_len
    attn_share = 1 + (ATTENTION_FORWARD_SHARE if setup.checkpointing is not Checkpointing.NONE else 0)
    attn_flops = tokens * attn_flops_conv * attn_share * CAUSAL_FRACTION / tp
    eta_mm = mm_factor * profile.matmul_efficiency * tokens / (tokens + profile.matmul_half_tokens)
    t_mm = mm_flops / (f_mm * eta_mm)
    t_attn = attn_flops / (f_attn * profile.attention_efficiency * attn_factor)
    kept, _ = activation_bytes_per_token_layer(shape, setup, tp)
    scores = 0 if setup.flash_attention else shape.num_heads * setup.seq_len * act_b / tp
    traffic = (kept - scores) * profile.elementwise_traffic * (1 + (RECOMPUTE_TRAFFIC_SHARE if recompute else 0))
    adapters = 0.0
    if not full:
        per_layer = sum(
            lin.copies * (lin.in_features + lin.out_features + 2 * setup.lora_rank)
            for lin in lora_linears(shape, setup.lora_targets)
        )
        adapters = per_layer * act_b * (adapter_passes / FORWARD_FLOPS_PER_PARAM) / tp
    t_ew = tokens * layers * (traffic + adapters) / bandwidth
    t_dequant = 0.0
    if setup.method is Method.QLORA:
        dequant_passes = DEQUANT_PASSES + (1 if recompute else 0)
        t_dequant = dequant_passes * shape.block_linear_params / pp / tp * NF4_DEQUANT_BYTES_PER_PARAM / bandwidth
    t_compute = t_mm + t_attn + t_ew + t_dequant

    # -- tensor and pipeline parallel communication (critical path) ----------------------------
    tp_group = _group(tp, gpn, layout, link)
    message = tokens * shape.hidden_size * act_b
    tp_collectives = TP_ALLREDUCES_PER_LAYER + (TP_ALLREDUCES_PER_RECOMPUTE if recompute else 0)
    t_tp = (
        layers * tp_collectives * _collective_s(message, tp, tp_group.bytes_per_s, tp_group.latency_s, all_reduce=True)
    )
    t_pp = 0.0
    if pp > 1:
        crosses_nodes = tp * dp >= gpn
        p2p = (link.node_network_bytes_per_s / gpn) if crosses_nodes else link.intra_node_bytes_per_s
        latency = link.network_latency_s if crosses_nodes else link.intra_node_latency_s
        t_pp = 2 * (message / (tp if setup.sequence_parallel else 1) / p2p + latency)

    # -- data-parallel (ZeRO / FSDP) communication ---------------------------------------------
    params_gpu = stage_params(shape, pp - 1, pp) / tp
    w_b, g_b = WEIGHT_BYTES[setup.precision], GRADIENT_BYTES[setup.precision]
    trained = params_gpu if full else lora / tp
    if full:
        gather_bytes = params_gpu * w_b
    elif setup.method is Method.QLORA:
        gather_bytes = (
            shape.nf4_linear_bytes / pp / tp + (params_gpu - shape.block_linear_params / pp / tp) * SIXTEEN_BIT_BYTES
        )
    else:
        gather_bytes = params_gpu * w_b
    grad_bytes = trained * g_b
    dp_ranks_per_node = max(1, gpn // min(gpn, tp))
    z, hybrid = setup.zero_stage, setup.hybrid_shard
    shard = min(dp, dp_ranks_per_node) if hybrid else dp
    shard_group = _group(shard, dp_ranks_per_node, layout, link)
    dp_group = _group(dp, dp_ranks_per_node, layout, link)
    units = max(1.0, layers)  # FSDP / ZeRO-3 wrap each block
    per_mb = 0.0  # overlappable with this micro-batch's compute
    per_step_overlap = 0.0  # overlappable with the last backward
    per_step_exposed = 0.0
    if dp > 1:
        if z >= 3:
            per_mb = 2 * _collective_s(gather_bytes, shard, shard_group.bytes_per_s, shard_group.latency_s) + (
                _collective_s(grad_bytes, shard, shard_group.bytes_per_s, shard_group.latency_s)
            )
            if hybrid and dp > shard:
                rep = _group(dp // shard, 1, layout, link)
                per_step_overlap = _collective_s(
                    grad_bytes / shard, rep.ranks, rep.bytes_per_s, rep.latency_s, all_reduce=True
                )
        elif z == 2:
            per_mb = _collective_s(grad_bytes, dp, dp_group.bytes_per_s, dp_group.latency_s)
            per_step_exposed = _collective_s(trained * w_b, dp, dp_group.bytes_per_s, dp_group.latency_s)
        elif z == 1:
            per_step_overlap = _collective_s(grad_bytes, dp, dp_group.bytes_per_s, dp_group.latency_s)
            per_step_exposed = _collective_s(trained * w_b, dp, dp_group.bytes_per_s, dp_group.latency_s)
        else:
            per_step_overlap = _collective_s(grad_bytes, dp, dp_group.bytes_per_s, dp_group.latency_s, all_reduce=True)
    exposed_mb = max(per_mb - t_compute, per_mb / units, profile.exposed_comm_fraction * per_mb) if per_mb else 0.0
    exposed_step = (
        max(per_step_overlap - BACKWARD_SHARE * t_compute, per_step_overlap / units) if per_step_overlap else 0.0
    )

    # -- optimizer step ------------------------------------------------------------------------
    o_b = optimizer_bytes_per_param(setup.precision, setup.optimizer)
    opt_shard = trained / (shard if (dp > 1 and z >= 1) else 1)
    step_bytes = opt_shard * (w_b + g_b + 2 * o_b + w_b)  # read w, g, states; write w, states
    t_opt = step_bytes / bandwidth
    t_offload = 0.0
    offload_mb = 0.0
    if setup.offload == "cpu":
        # CPU Adam over the GPUs of a node sharing the host's memory bandwidth; gradients down
        # and updated weights up over PCIe once per step.
        t_opt = opt_shard * (g_b + 2 * o_b + w_b) / HOST_ADAM_BYTES_PER_S * min(gpn, layout.gpus)
        t_offload = opt_shard * (g_b + w_b) / link.host_link_bytes_per_s
        if z >= 2:  # ZeRO-Offload moves each micro-batch's reduced gradient shard to the host
            offload_mb += trained / shard * g_b / link.host_link_bytes_per_s
        if z >= 3:  # and fetches the weight shard for the forward and the backward
            offload_mb += 2 * gather_bytes / shard / link.host_link_bytes_per_s

    # -- one optimizer step ----------------------------------------------------------------------
    m = setup.grad_accumulation
    t_mb = t_compute + t_tp + t_pp + exposed_mb + offload_mb
    bubble = (pp - 1) * t_mb
    step = m * t_mb + bubble + exposed_step + per_step_exposed + t_opt + t_offload
    tokens_per_step = m * setup.micro_batch * dp * setup.seq_len
    tps = tokens_per_step / step
    per_gpu = tps / layout.gpus
    bf16_peak = f_attn
    mfu = model_flops_per_token(shape, setup) * per_gpu / bf16_peak
    breakdown = {
        "matmul": m * t_mm,
        "attention": m * t_attn,
        "elementwise": m * t_ew,
        "dequantize": m * t_dequant,
        "tensor_parallel": m * t_tp,
        "pipeline_send": m * t_pp,
        "pipeline_bubble": bubble,
        "data_parallel_exposed": m * exposed_mb + exposed_step + per_step_exposed,
        "optimizer": t_opt,
        "offload_copies": t_offload + m * offload_mb,
    }
    derivation = (
        f"step = {m} micro-batches × {t_mb * 1e3:.1f} ms (compute {t_compute * 1e3:.1f}, TP {t_tp * 1e3:.1f}, "
        f"PP send {t_pp * 1e3:.1f}, exposed ZeRO/FSDP {exposed_mb * 1e3:.1f}) + bubble {bubble * 1e3:.1f} ms + "
        f"exposed gradient sync {(exposed_step + per_step_exposed) * 1e3:.1f} ms + "
        f"optimizer {(t_opt + t_offload) * 1e3:.1f} ms; "
        f"matmul efficiency {eta_mm:.2f} of {f_mm / TERA:.0f} TFLOP/s, profile {profile.name}"
    )
    return TrainingSpeed(
        tokens_per_s=tps,
        tokens_per_s_per_gpu=per_gpu,
        mfu=mfu,
        step_time_s=step,
        tokens_per_step=tokens_per_step,
        breakdown_s=breakdown,
        derivation=derivation,
    )


# ---- links ----------------------------------------------------------------------------------
# NCCL reaches ~370 GB/s ring busbw on H100 NVLink of 450 GB/s per direction (nccl-tests #212,
# sjeaugey; perf-model.md §6.1 [S:NCCL-212]); the same share is used for other NVLink parts.
NVLINK_BUSBW_FRACTION = 370 / 450
# AMD Instinct MI300X: 7 Infinity Fabric links of 128 GB/s (bidirectional) per OAM module
# (AMD Instinct MI300X data sheet), used like NVLink inside an 8-GPU platform.
OAM_INFINITY_FABRIC_GB_PER_S = 7 * 128
# Without PCIe peer-to-peer (GeForce on the stock driver) NCCL stages through host memory:
# assume half the P2P bus bandwidth (perf-model.md §6.3 [D]).
PCIE_NO_P2P_FACTOR = 0.5
# Per-collective latency: NVLink ~10 µs (vLLM custom all-reduce 8.5–11.8 µs, [S:SGL-2904]);
# PCIe NCCL small messages ~20 µs ([S:NCCLT-293]); across nodes assumed 30 µs [D].
NVLINK_LATENCY_S = 10e-6
PCIE_LATENCY_S = 20e-6
NETWORK_LATENCY_S = 30e-6
# Node networks: line rate per NIC (Gb/s) and NICs per node.  InfiniBand / RoCE clusters are
# rail-optimised with one NIC per GPU (NVIDIA DGX A100 / H100 user guides: 8 ConnectX compute
# ports); Ethernet classes are one NIC per node.  Achieved share of line rate [D]: RDMA 0.9,
# TCP sockets 0.7.
NETWORK_NIC_GBIT = {"ib-ndr": 400, "ib-hdr": 200, "roce-400g": 400, "eth-100g": 100, "eth-25g": 25, "eth-10g": 10}
RDMA_NETWORKS = frozenset({"ib-ndr", "ib-hdr", "roce-400g"})
RDMA_EFFICIENCY = 0.9
TCP_EFFICIENCY = 0.7
BITS_PER_BYTE = 8


def intra_node_busbw(gpus: tuple[GPU, ...]) -> tuple[float, float, str]:
    """(bytes/s, latency s, description) of NCCL collectives among one node's GPUs."""
    g = gpus[0]
    n = len(gpus)
    if g.nvlink == "sxm" and g.nvlink_gb_per_s:
        return (
            g.nvlink_gb_per_s / DIRECTIONS * NVLINK_BUSBW_FRACTION * GB,
            NVLINK_LATENCY_S,
            f"NVLink {g.nvlink_gb_per_s:g} GB/s",
        )
    if g.nvlink == "bridge" and g.nvlink_gb_per_s and n <= (g.nvlink_max_gpus or 2):
        return (
            g.nvlink_gb_per_s / DIRECTIONS * NVLINK_BUSBW_FRACTION * GB,
            NVLINK_LATENCY_S,
            f"NVLink bridge {g.nvlink_gb_per_s:g} GB/s",
        )
    if g.form_factor == "oam":
        return (
            OAM_INFINITY_FABRIC_GB_PER_S / DIRECTIONS * NVLINK_BUSBW_FRACTION * GB,
            NVLINK_LATENCY_S,
            "Infinity Fabric",
        )
    gen = g.pcie_generation or 4
    p2p = all(x.p2p_stock_driver for x in gpus)
    bw = PCIE_GEN_X16_BYTES_PER_S.get(gen, PCIE_GEN_X16_BYTES_PER_S[4]) * PCIE_EFFICIENCY
    return (
        bw * (1 if p2p else PCIE_NO_P2P_FACTOR),
        PCIE_LATENCY_S,
        f"PCIe {gen}.0 x16{'' if p2p else ' without P2P'}",
    )


def interconnect_for(gpus: tuple[GPU, ...], network: str, nodes: int) -> Interconnect:
    """The links of a rig: ``gpus`` of one node, the node network class, the node count."""
    intra, latency, what = intra_node_busbw(gpus)
    nics = len(gpus) if network in RDMA_NETWORKS else 1
    eff = RDMA_EFFICIENCY if network in RDMA_NETWORKS else TCP_EFFICIENCY
    node_bw = NETWORK_NIC_GBIT[network] * 1e9 / BITS_PER_BYTE * nics * eff
    gen = gpus[0].pcie_generation or 4
    host = PCIE_GEN_X16_BYTES_PER_S.get(gen, PCIE_GEN_X16_BYTES_PER_S[4]) * PCIE_EFFICIENCY
    desc = what if nodes == 1 else f"{what}; {network} × {nics} per node between {nodes} nodes"
    return Interconnect(intra, latency, node_bw, NETWORK_LATENCY_S, host, desc)
