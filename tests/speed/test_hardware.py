"""Hardware-derived quantities the speed model uses (speed/hardware.py)."""

from __future__ import annotations

import pytest

from rigplan import load_catalog
from rigplan.speed import hardware


def gpu(gpu_id: str):
    return load_catalog().gpus[gpu_id]


@pytest.mark.parametrize(
    ("gpu_id", "cls"),
    [
        pytest.param("rtx-4090", hardware.GDDR, id="gddr6x"),
        pytest.param("tesla-p40", hardware.GDDR, id="gddr5"),
        pytest.param("h100-pcie", hardware.HBM, id="hbm2e"),
        pytest.param("mi300x", hardware.HBM, id="hbm3"),
        pytest.param("m2-ultra-192gb", hardware.UNIFIED, id="apple"),
    ],
)
def test_memory_class(gpu_id, cls):
    assert hardware.memory_class(gpu(gpu_id)) == cls


@pytest.mark.parametrize(
    ("gpu_id", "sm_ghz"),
    [
        # SM count × boost clock from the catalogue: 128 × 2.52, 82 × 1.695, 114 × 1.755.
        pytest.param("rtx-4090", 322.56, id="4090"),
        pytest.param("rtx-3090", 138.99, id="3090"),
        pytest.param("h100-pcie", 200.07, id="h100-pcie"),
        # Apple: 76 GPU cores × 1.398 GHz (hardware.APPLE_GPU_CLOCK_MHZ).
        pytest.param("m2-ultra-192gb", 106.248, id="m2-ultra"),
    ],
)
def test_sm_clock(gpu_id, sm_ghz):
    assert hardware.sm_clock_per_s(gpu(gpu_id)) / 1e9 == pytest.approx(sm_ghz, rel=1e-3)


@pytest.mark.parametrize(
    ("gpu_id", "fp16_acc", "tflops"),
    [
        # Ada whitepaper: 4090 dense FP16 165.2 (FP32 accumulate), 330.3 (FP16 accumulate).
        pytest.param("rtx-4090", True, 330.3, id="4090-acc16"),
        pytest.param("rtx-4090", False, 165.2, id="4090-acc32"),
        # A6000 has no separate FP16-accumulate figure: the listed one serves both.
        pytest.param("rtx-a6000", True, 154.8, id="a6000"),
        # GeForce with only the FP32-accumulate figure listed (RTX 5080 112.6): FP16 accumulate is twice it.
        pytest.param("rtx-5080", True, 225.2, id="5080-acc16"),
        pytest.param("rtx-5080", False, 112.6, id="5080-acc32"),
        # GeForce with no figure: 1024 per SM-clock (80 x 2.55 GHz) with FP16 accumulate, half with FP32.
        pytest.param("rtx-4080-super", True, 208.9, id="4080s-acc16"),
        pytest.param("rtx-4080-super", False, 104.4, id="4080s-acc32"),
        # Workstation Blackwell runs FP32 accumulate at the full rate (RTX PRO 6000 503.8 dense).
        pytest.param("rtx-pro-6000", False, 503.8, id="pro6000-acc32"),
        pytest.param("rtx-pro-6000-max-q", False, 438.9, id="pro6000-maxq-acc32"),
        # No tensor cores: FP32 rate (P40 12 TFLOPS).
        pytest.param("tesla-p40", True, 12.0, id="p40"),
        # M2 Ultra: 76 cores × 128 ALUs × 2 × 1.398 GHz = 27.2 TFLOPS.
        pytest.param("m2-ultra-192gb", True, 27.2, id="m2-ultra"),
    ],
)
def test_matmul_peak(gpu_id, fp16_acc, tflops):
    assert hardware.matmul_peak_flops(gpu(gpu_id), fp16_accumulate=fp16_acc) / 1e12 == pytest.approx(tflops, rel=0.01)


def test_peak_falls_back_to_sm_clock_when_the_catalogue_has_none():
    # RTX 3090 Ti lists no tensor figure: 84 SMs × 1.86 GHz × 1024 FLOPs/clock = 160 TFLOPS.
    assert hardware.matmul_peak_flops(gpu("rtx-3090-ti"), fp16_accumulate=True) / 1e12 == pytest.approx(160.0, rel=0.01)


def test_pascal_quantised_matmuls_use_dp4a():
    p40 = gpu("tesla-p40")
    assert hardware.matmul_peak_flops(p40, fp16_accumulate=True, quantized=True) == pytest.approx(
        hardware.DP4A_SPEEDUP_OVER_FP32 * hardware.matmul_peak_flops(p40, fp16_accumulate=True)
    )


def test_hardware_kind_names_memory_and_architecture():
    assert hardware.hardware_kind(gpu("l40s")) == "gddr/ada"
    assert hardware.hardware_kind(gpu("a100-sxm-80gb")) == "hbm/ampere"
