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

The step itself is composed in :mod:`.step`.
The efficiencies come from ``profiles/training.toml`` (fitted by :mod:`rigplan.training.fit`
to llm-foundry and torchtitan measurements).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..catalog.records import GPU
from ..errors import InvalidValueError, UnsupportedError
from ..speed import hardware
from ..speed.comm import LINKS, XGMI, infinity_fabric
from ..units import GB, TERA
from .frameworks import NEUTRAL, FrameworkProfile
from .setup import Layout, Precision, TrainingSetup
from .shape import ModelShape, lora_parameters

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
# Low-bit linears run at the FP8 (or FP4) tensor peak but reach a smaller share of it than bf16
# GEMMs reach of theirs (casts, amax/scale updates, bf16 attention and wgrad paths).  The share is
# a framework property (FrameworkProfile.fp8_share, fitted); this is the value for a framework
# with no FP8 rows: llm-foundry H100 MPT-3B/1B gain ×1.16–1.35 over bf16, not ×2
# (mosaicml/llm-foundry scripts/train/benchmarking/README.md @061f2c7c, "H100 80GB BF16/FP8").
FP8_MATMUL_EFFICIENCY_RATIO = 0.6
# MXFP8 (32-element block scales) runs on Blackwell's block-scaled tensor cores only.
MX_ARCHITECTURES = frozenset({"blackwell"})
# Dense FP4 (NVFP4) peak over the FP8 peak per generation: B200 9 vs 4.5 PFLOPS dense (NVIDIA
# DGX B200 / HGX B200 datasheets: 72 PF FP8 and 144 PF FP4 per 8 GPUs, sparse halves).
FP4_PER_FP8 = {"blackwell": 2.0}
# Blackwell Ultra (chip GB110: B300, GB300) keeps the FP8 rate and has 1.5x Blackwell's dense FP4
# ("1.5x more dense FP4 compute", NVIDIA GB300 NVL72 page): 15 vs 5 PF dense per GB300 GPU
# (verda.com/blog/gb300-nvl72-architecture), 13.1 vs 4.5 on HGX B300 (Klockwood B300 page).
FP4_PER_FP8_BY_CHIP = {"GB110": 3.0}

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
    # GPUs one NVLink fabric joins when it reaches beyond a node (GB200 NVL72: 72); 0: one node.
    nvlink_domain: int = 0


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


def bf16_peak_flops(gpu: GPU) -> float:
    """Dense bf16/fp16 tensor FLOP/s with FP32 accumulation (what training uses).

    The catalogue's figure where it has one; else derived from SM count × clock and the
    architecture's tensor FLOPs per SM-clock, halved on GeForce (:func:`rigplan.speed.hardware.
    matmul_peak_flops` with FP32 accumulate: ``hardware.GEFORCE_FP32_ACCUMULATE_SHARE``).

    Raises:
        UnsupportedError: the GPU has no tensor cores, or is an Apple GPU (no training stack modelled).
    """
    if gpu.is_apple:
        raise UnsupportedError(
            f"{gpu.id}: Apple GPUs train through PyTorch MPS / MLX, for which rigplan has no published "
            "throughput (and the catalogue no tensor rate); training speed not estimated"
        )
    if gpu.architecture in hardware.NO_TENSOR_CORES:
        raise UnsupportedError(f"{gpu.id} ({gpu.architecture}): no tensor cores and no bf16; use precision f32")
    return hardware.matmul_peak_flops(gpu, fp16_accumulate=False)


def peak_flops(gpu: GPU, precision: Precision, framework: FrameworkProfile = NEUTRAL) -> tuple[float, float]:
    """(matmul rate, attention peak) in FLOP/s for ``precision`` on ``gpu``: the low-bit matmul
    rate includes the framework's share of the FP8/FP4 peak; attention runs in bf16.

    Raises:
        UnsupportedError: the GPU lacks the tensor cores for it (the message says which).
    """
    if precision is Precision.F32:
        if gpu.fp32_tflops is None:
            raise UnsupportedError(f"{gpu.id}: no FP32 throughput in the catalogue; training speed unknown")
        return gpu.fp32_tflops * TERA, gpu.fp32_tflops * TERA
    bf16 = bf16_peak_flops(gpu)
    if not precision.low_bit:
        return bf16, bf16
    if gpu.fp8_tensor_tflops is None:
        raise UnsupportedError(
            f"precision {precision.value}: {gpu.id} has no FP8 tensor cores (Ada, Hopper and later have)"
        )
    fp8 = gpu.fp8_tensor_tflops * TERA
    if precision is Precision.FP8:
        return fp8 * framework.fp8_share, bf16
    if gpu.architecture not in MX_ARCHITECTURES:
        raise UnsupportedError(
            f"precision {precision.value}: {gpu.id} ({gpu.architecture}) has no block-scaled (MXFP8/NVFP4) "
            "tensor cores; Blackwell has"
        )
    if precision is Precision.MXFP8:
        return fp8 * framework.fp8_share, bf16
    fp4_per_fp8 = FP4_PER_FP8_BY_CHIP.get(gpu.chip or "", FP4_PER_FP8[gpu.architecture])
    return fp8 * fp4_per_fp8 * framework.fp4_share, bf16


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


def nvlink_span(layout: Layout, link: Interconnect) -> int:
    """GPUs that reach each other over the node link: one node, or a rack-scale NVLink domain
    (GB200 NVL72) where the rig is racks of such GPUs."""
    return max(layout.gpus_per_node, min(link.nvlink_domain, layout.gpus))


def _group(ranks: int, ranks_per_node: int, layout: Layout, link: Interconnect) -> _Group:
    """Bandwidth of a process group: NVLink/PCIe inside one node (or NVLink domain, callers pass
    its ranks); across nodes the group's share of each node's NICs (its ranks on a node out of all
    GPUs of that node run at once)."""
    ranks_per_node = max(1, min(ranks, ranks_per_node))
    if ranks <= ranks_per_node:
        return _Group(ranks, link.intra_node_bytes_per_s, link.intra_node_latency_s)
    share = link.node_network_bytes_per_s * min(ranks_per_node, layout.gpus_per_node) / layout.gpus_per_node
    return _Group(ranks, min(link.intra_node_bytes_per_s, share), link.network_latency_s)


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


def _forced_link(gpus: tuple[GPU, ...], link: str) -> tuple[float, float, str]:
    """Bus bandwidth of ``link`` between the GPUs of a node (as ``estimate --link`` sets it).

    Raises:
        InvalidValueError: an unknown link, or NVLink on GPUs without it.
    """
    if link not in LINKS:
        raise InvalidValueError("link", f"must be one of {', '.join(LINKS)}, got {link!r}")
    if link == XGMI:
        if not infinity_fabric(gpus):
            raise InvalidValueError("link", f"xgmi joins only AMD Instinct OAM modules, not {gpus[0].id}")
        return intra_node_busbw(gpus)
    if link == "nvlink":
        g = gpus[0]
        if not (g.nvlink and g.nvlink_gb_per_s) or (g.nvlink == "bridge" and len(gpus) > (g.nvlink_max_gpus or 2)):
            raise InvalidValueError("link", f"{g.id} × {len(gpus)} cannot all be joined by NVLink")
        return intra_node_busbw(gpus)
    gen = int(link[-1])
    p2p = all(x.p2p_stock_driver for x in gpus)
    bw = PCIE_GEN_X16_BYTES_PER_S[gen] * PCIE_EFFICIENCY * (1 if p2p else PCIE_NO_P2P_FACTOR)
    return bw, PCIE_LATENCY_S, f"PCIe {gen}.0 x16{'' if p2p else ' without P2P'}"


def interconnect_for(gpus: tuple[GPU, ...], network: str, nodes: int, *, link: str | None = None) -> Interconnect:
    """The links of a rig: ``gpus`` of one node, the node network class, the node count, and
    optionally the link between a node's GPUs (None: the best they support)."""
    intra, latency, what = intra_node_busbw(gpus) if link is None or len(gpus) == 1 else _forced_link(gpus, link)
    nics = len(gpus) if network in RDMA_NETWORKS else 1
    eff = RDMA_EFFICIENCY if network in RDMA_NETWORKS else TCP_EFFICIENCY
    node_bw = NETWORK_NIC_GBIT[network] * 1e9 / BITS_PER_BYTE * nics * eff
    gen = gpus[0].pcie_generation or 4
    host = PCIE_GEN_X16_BYTES_PER_S.get(gen, PCIE_GEN_X16_BYTES_PER_S[4]) * PCIE_EFFICIENCY
    domain = rack_nvlink_domain(gpus, link)
    desc = what if nodes == 1 else f"{what}; {network} × {nics} per node between {nodes} nodes"
    if domain and nodes > 1:
        desc += f" (NVLink joins up to {domain} GPUs across nodes)"
    return Interconnect(intra, latency, node_bw, NETWORK_LATENCY_S, host, desc, domain)


def rack_nvlink_domain(gpus: tuple[GPU, ...], link: str | None = None) -> int:
    """GPUs one NVLink fabric joins beyond a node, 0 where it stops at the node.

    GB200 / GB300 NVL72: NVLink switch trays join the 72 GPUs of a rack's 18 compute trays into
    one NVLink domain (NVIDIA GB200 NVL72 product page; catalogue ``nvlink_max_gpus`` = 72), so a
    rig of such GPUs is taken to be racks of up to that many, all-to-all and TP running over NVLink
    inside a rack (as the Megatron-Bridge GB200 tables run EP64 inside one NVL72)."""
    g = gpus[0]
    if link not in (None, "nvlink") or g.nvlink != "sxm" or not g.nvlink_max_gpus:
        return 0
    return g.nvlink_max_gpus if g.nvlink_max_gpus > len(gpus) else 0
