"""All-reduce and link models (speed/comm.py) against perf-model.md §6."""

from __future__ import annotations

import pytest

from rigplan import load_catalog
from rigplan.speed import comm


def test_all_reduce_follows_the_nccl_formula():
    link = comm.LinkModel("test", 20e-6, 10e9)
    # α + 2(n−1)/n · S / busbw: 20 µs + 1.5 · 1 MB / 10 GB/s = 170 µs on 4 ranks.
    assert link.all_reduce_s(1e6, 4) == pytest.approx(170e-6)
    assert link.all_reduce_s(1e6, 1) == 0.0


@pytest.mark.parametrize(
    ("kind", "p2p", "latency_s"),
    [
        # perf-model §6.2: 2·L·t_AR for a 70B (L = 80) is 3.2 ms at 20 µs (PCIe NCCL) …
        pytest.param("pcie4", True, 20e-6, id="pcie-p2p"),
        # … and 4.8 ms at 30 µs without P2P (20–40 µs through host memory).
        pytest.param("pcie4", False, 30e-6, id="pcie-no-p2p"),
    ],
)
def test_seventy_b_decode_all_reduce_cost(kind, p2p, latency_s):
    gpus = (load_catalog().gpus["rtx-4090"],) * 4
    link = comm.intra_node_link(kind, 16, p2p, gpus, custom_all_reduce=False)
    decode = 2 * 80 * link.all_reduce_s(8192 * 2, 4)
    assert link.latency_s == latency_s
    assert decode == pytest.approx(2 * 80 * latency_s, rel=0.1)


def test_nvlink_custom_all_reduce_is_faster_than_pcie():
    gpus = (load_catalog().gpus["h100-sxm"],) * 8
    nv = comm.intra_node_link("nvlink", 16, True, gpus, custom_all_reduce=True)
    pcie = comm.intra_node_link("pcie5", 16, True, gpus, custom_all_reduce=False)
    assert nv.all_reduce_s(16e3, 8) < pcie.all_reduce_s(16e3, 8)
    # H100 NVLink 900 GB/s bidirectional → 450 per direction × 0.82 ≈ 370 GB/s busbw [S:NCCL-212].
    assert nv.bus_bytes_per_s / 1e9 == pytest.approx(369, rel=0.01)


@pytest.mark.parametrize(
    ("gen", "lanes", "gb_per_s"),
    [(3, 16, 15.76), (4, 16, 31.5), (5, 16, 63.0), (4, 8, 15.75)],
)
def test_pcie_bandwidth(gen, lanes, gb_per_s):
    assert comm.pcie_bytes_per_s(gen, lanes) / 1e9 == pytest.approx(gb_per_s, rel=0.01)


def test_network_is_slower_than_nvlink():
    assert comm.network_link("eth-10g").bus_bytes_per_s < comm.network_link("ib-ndr").bus_bytes_per_s
    assert comm.network_link("ib-ndr").latency_s > comm.ALLREDUCE_LATENCY_NVLINK_S


def test_amd_oam_modules_talk_over_infinity_fabric():
    """8x MI300X on a UBB baseboard: xGMI (RCCL busbw 161 GB/s at 8 MiB), not PCIe 5.0, whatever
    link the rig names; the default link says so."""
    from rigplan.estimate import estimate

    mi300x = (load_catalog().gpus["mi300x"],) * 8
    for kind in ("pcie5", comm.XGMI):
        link = comm.intra_node_link(kind, 16, True, mi300x, custom_all_reduce=True)
        assert link.kind == comm.XGMI and link.bus_bytes_per_s == pytest.approx(161e9)
    assert estimate("llama-3.1-70b", "8x mi300x", engine="vllm", quant="fp8").link.kind == comm.XGMI
    # a PCIe link named for them is reported as what is priced
    assert estimate("llama-3.1-70b", "8x mi300x", engine="vllm", quant="fp8", link="pcie4").link.kind == comm.XGMI
    assert not comm.infinity_fabric(mi300x[:1])  # one GPU: no peer link
    assert not comm.infinity_fabric((load_catalog().gpus["rx-7900-xtx"],) * 2)
