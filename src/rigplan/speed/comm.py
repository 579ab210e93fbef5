"""Communication between GPUs: all-reduce for tensor parallelism, hops for pipelines.

NCCL's model (nccl-tests doc/PERFORMANCE.md): an all-reduce of S bytes over n ranks takes
``α + 2(n−1)/n · S / busbw``.  Latencies and bus bandwidths by link are the measurements
collected in perf-model.md §6.1.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.records import GPU
from ..units import GB

#: PCIe payload bandwidth per lane and direction in GB/s, by generation (PCI-SIG: 8, 16,
#: 32 GT/s with 128b/130b encoding).
PCIE_GB_PER_S_PER_LANE = {3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}
#: NCCL bus bandwidth reached on PCIe with P2P: 24.5 GB/s all-reduce busbw on 6× RTX 4090 at
#: PCIe 4.0 x16 (31.5 GB/s) with the P2P-patched driver = 0.78 [S:TINYGRAD-P2P].
PCIE_P2P_BUS_EFFICIENCY = 0.78
#: Without P2P NCCL stages through host memory: "roughly half the busbw" [D, perf-model §6.3];
#: a patched-driver 4090 report shows 12.6 GB/s [S:TINYGRAD-PR22].
PCIE_NO_P2P_BUS_EFFICIENCY = 0.4
#: NCCL ring busbw on H100 NVLink ≈ 370 GB/s of 450 GB/s per direction = 0.82 [S:NCCL-212].
NVLINK_BUS_EFFICIENCY = 0.82
#: Small-message all-reduce latency α in seconds:
#: custom one-shot all-reduce over NVLink 3.7–11.8 µs (SGLang / vLLM kernels) [S:SGL-2904];
#: NCCL on PCIe with P2P ≈ 19–24 µs [S:SGLV100-2, S:NCCLT-293];
#: no P2P (host-staged) 20–40 µs [D, perf-model §9.9]; one-shot P2P kernel on PCIe 4–12 µs.
ALLREDUCE_LATENCY_NVLINK_S = 8e-6
ALLREDUCE_LATENCY_PCIE_P2P_S = 20e-6
ALLREDUCE_LATENCY_PCIE_CUSTOM_S = 10e-6
ALLREDUCE_LATENCY_PCIE_NO_P2P_S = 30e-6
#: Network between nodes: payload GB/s per direction and NCCL small-message latency.
#: InfiniBand NDR 400 Gb/s, HDR 200 Gb/s; RoCE 400G; Ethernet 100/25/10 Gb/s.  Latency: NCCL
#: over IB ≈ 20–30 µs for small all-reduces, TCP sockets ≈ 60–100 µs [D].
NETWORK_GB_PER_S = {
    "ib-ndr": 50.0,
    "ib-hdr": 25.0,
    "roce-400g": 50.0,
    "eth-100g": 12.5,
    "eth-25g": 3.125,
    "eth-10g": 1.25,
}
NETWORK_LATENCY_S = {
    "ib-ndr": 25e-6,
    "ib-hdr": 25e-6,
    "roce-400g": 35e-6,
    "eth-100g": 80e-6,
    "eth-25g": 90e-6,
    "eth-10g": 100e-6,
}
#: Network links reach about 0.8 of line rate in NCCL tests [D].
NETWORK_BUS_EFFICIENCY = 0.8
#: Bytes of one activation element exchanged between GPUs: 16-bit in vLLM-class engines,
#: f32 in llama.cpp's graph.
ACTIVATION_BYTES_16 = 2
ACTIVATION_BYTES_32 = 4
#: NVLink per-direction bandwidth is half the bidirectional figure vendors print.
NVLINK_DIRECTIONS = 2
#: AMD Instinct OAM modules (MI300X) sit on a UBB baseboard whose 8 GPUs are fully connected by
#: Infinity Fabric (xGMI; 7 links a GPU, 896 GB/s aggregate per AMD's MI300X data sheet); peer
#: traffic does not cross PCIe.  RCCL all-reduce busbw measured on one 8x MI300X node: 161 GB/s
#: at 8 MiB (rccl-tests develop:83d38d9, crickett-hpe/hpc-ai-envs#30) — taken as the bus
#: bandwidth; larger messages (a decode step of thousands of sequences all-reduces tens of MB)
#: reach more, so this errs slow.  Without it the model priced 8x MI300X as PCIe 5.0 (39 GB/s
#: busbw), 0.30 s of all-reduce in a 3,200-sequence Llama 3.1 70B step, and under-predicted
#: vLLM's offline throughput there by ~40 % (AMD's published MI300X tables, serving.csv).
XGMI_BUS_GB_PER_S = 161.0
XGMI = "xgmi"
#: The links between a node's GPUs a request can name (``--link``); ``xgmi`` only for AMD OAM
#: modules (:func:`infinity_fabric`), which use it whatever else is named but NVLink.
LINKS = ("nvlink", XGMI, "pcie3", "pcie4", "pcie5")


def infinity_fabric(gpus: tuple[GPU, ...]) -> bool:
    """Whether the GPUs are AMD OAM modules joined by Infinity Fabric on one baseboard."""
    return len(gpus) > 1 and all(g.vendor == "amd" and g.form_factor == "oam" for g in gpus)


@dataclass(frozen=True, slots=True)
class LinkModel:
    """What a collective sees on one link: latency and bus bandwidth (bytes/s)."""

    kind: str
    latency_s: float
    bus_bytes_per_s: float

    def all_reduce_s(self, nbytes: float, ranks: int) -> float:
        """Time of one all-reduce of ``nbytes`` over ``ranks`` GPUs (0 for one rank)."""
        if ranks <= 1:
            return 0.0
        return self.latency_s + 2 * (ranks - 1) / ranks * nbytes / self.bus_bytes_per_s

    def transfer_s(self, nbytes: float) -> float:
        """One point-to-point copy (a pipeline hop) of ``nbytes``."""
        return self.latency_s + nbytes / self.bus_bytes_per_s


def pcie_bytes_per_s(generation: int, lanes: int) -> float:
    """PCIe payload bandwidth per direction in bytes per second."""
    per_lane = PCIE_GB_PER_S_PER_LANE.get(generation, PCIE_GB_PER_S_PER_LANE[4])
    return per_lane * lanes * GB


def intra_node_link(kind: str, lanes: int, p2p: bool, gpus: tuple[GPU, ...], *, custom_all_reduce: bool) -> LinkModel:
    """The link between GPUs of one node ("nvlink", "xgmi" or "pcie3/4/5", lanes, P2P or not);
    AMD OAM modules talk over Infinity Fabric whatever PCIe generation is named."""
    if kind == XGMI or infinity_fabric(gpus):
        latency = ALLREDUCE_LATENCY_NVLINK_S if custom_all_reduce else ALLREDUCE_LATENCY_PCIE_P2P_S
        return LinkModel(XGMI, latency, XGMI_BUS_GB_PER_S * GB)
    if kind == "nvlink":
        rates = [g.nvlink_gb_per_s for g in gpus if g.nvlink_gb_per_s]
        per_direction = (min(rates) if rates else 100.0) / NVLINK_DIRECTIONS
        latency = ALLREDUCE_LATENCY_NVLINK_S if custom_all_reduce else ALLREDUCE_LATENCY_PCIE_P2P_S
        return LinkModel("nvlink", latency, per_direction * GB * NVLINK_BUS_EFFICIENCY)
    generation = int(kind[-1]) if kind[-1].isdigit() else 4
    raw = pcie_bytes_per_s(generation, lanes)
    if p2p:
        latency = (
            ALLREDUCE_LATENCY_PCIE_CUSTOM_S if custom_all_reduce and len(gpus) <= 2 else ALLREDUCE_LATENCY_PCIE_P2P_S
        )
        return LinkModel(kind, latency, raw * PCIE_P2P_BUS_EFFICIENCY)
    return LinkModel(kind, ALLREDUCE_LATENCY_PCIE_NO_P2P_S, raw * PCIE_NO_P2P_BUS_EFFICIENCY)


def network_link(network: str) -> LinkModel:
    """The link between nodes."""
    rate = NETWORK_GB_PER_S.get(network, NETWORK_GB_PER_S["ib-ndr"])
    latency = NETWORK_LATENCY_S.get(network, NETWORK_LATENCY_S["ib-ndr"])
    return LinkModel(network, latency, rate * GB * NETWORK_BUS_EFFICIENCY)
