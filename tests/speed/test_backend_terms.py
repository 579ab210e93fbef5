"""The ROCm / Vulkan terms of the fourth session: AMD prompt matmuls on the FP16 vector basis,
the build era of the prompt kernels, and rows rigplan says do not fit left out of the fit."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rigplan.calibration import dataset
from rigplan.calibration.fit_rows import calibration_rows, prepare_or_reason
from rigplan.catalog import load_catalog
from rigplan.speed import hardware
from rigplan.speed.decode import tensor_throughput
from rigplan.speed.prefill import BUILD_ERA_REFERENCE, build_era_speedup
from rigplan.speed.profile import EngineBehaviour, SpeedParameters

GPUS = load_catalog().gpus


@pytest.mark.parametrize(
    ("gpu", "tflops"),
    # 2 × the catalogue's FP32 vector rate (its own sources): MI300X 81.7, RX 7900 XTX 61.4.
    [("mi300x", 163.4), ("rx-7900-xtx", 122.8)],
)
def test_amd_vector_basis_is_twice_the_fp32_rate(gpu, tflops):
    assert hardware.amd_vector_fp16_flops(GPUS[gpu]) / 1e12 == pytest.approx(tflops, rel=1e-3)


def test_amd_vector_basis_prices_cdna_below_its_matrix_peak_and_leaves_nvidia_alone():
    params = SpeedParameters(tensor_efficiency=0.5, sm_flops_per_cycle_cap=1e9)
    on, off = EngineBehaviour(amd_vector_basis=True), EngineBehaviour()
    mi300x, h100 = GPUS["mi300x"], GPUS["h100-sxm"]
    assert (
        tensor_throughput(params, on, mi300x, quantized=False)
        < tensor_throughput(params, off, mi300x, quantized=False) / 5
    )
    assert tensor_throughput(params, on, h100, quantized=False) == tensor_throughput(params, off, h100, quantized=False)


@given(
    speedup=st.floats(1.01, 3.0),
    early=st.integers(4000, 12000),
    late=st.integers(4000, 12000),
)
def test_build_era_term_is_monotonic_and_one_at_the_reference(speedup, early, late):
    params = SpeedParameters(prefill_speedup_per_kilobuild=speedup)
    at = lambda b: build_era_speedup(params, EngineBehaviour(build=b))  # noqa: E731
    assert at(BUILD_ERA_REFERENCE) == pytest.approx(1.0)
    if early < late:
        assert at(early) < at(late)
    assert build_era_speedup(SpeedParameters(), EngineBehaviour(build=late)) == 1.0
    assert build_era_speedup(params, EngineBehaviour(build=0)) == 1.0


def test_rows_whose_layout_does_not_fit_are_not_fitted():
    # kyuz0 2x R9700 BF16 Qwen3-Coder-30B at 32k depth: 5.05 tok/s, the Q8_0 file 41 (spill to GTT).
    m = next(m for m in dataset.measurements() if m.ref == "llamacpp_current.csv:430")
    p = prepare_or_reason(m)
    assert not isinstance(p, str) and not p.fits
    assert calibration_rows("llama.cpp", "vulkan", [p], dataset.ERA_CURRENT) == []
    assert calibration_rows("llama.cpp", "vulkan", [dataclasses.replace(p, fits=True)], dataset.ERA_CURRENT)
