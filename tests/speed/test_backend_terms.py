"""The ROCm / Vulkan terms of the fourth session: AMD prompt matmuls on the FP16 vector basis,
the build era of the prompt kernels, and rows rigplan says do not fit left out of the fit."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from one_device import one_device
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


# --- fifth session: RDNA4 WMMA, the attention kernels' rate, 16-bit MoE experts one by one ---


def test_rdna4_wmma_doubles_the_prompt_basis_only_where_the_backend_uses_it():
    # amd.com: RX 9070 XT 195 TFLOPS FP16 matrix (dense) vs 97.3 vector; RDNA3 WMMA = vector rate.
    r4, r3 = GPUS["rx-9070-xt"], GPUS["rx-7900-xtx"]
    assert hardware.amd_prompt_fp16_flops(r4, wmma=True) == pytest.approx(2 * hardware.amd_vector_fp16_flops(r4))
    assert hardware.amd_prompt_fp16_flops(r4, wmma=False) == hardware.amd_vector_fp16_flops(r4)
    assert hardware.amd_prompt_fp16_flops(r3, wmma=True) == hardware.amd_vector_fp16_flops(r3)
    params = SpeedParameters(tensor_efficiency=0.5, sm_flops_per_cycle_cap=1e9)
    rocm = EngineBehaviour(amd_vector_basis=True, amd_wmma_prefill=True)
    vulkan = EngineBehaviour(amd_vector_basis=True)
    ratio = tensor_throughput(params, rocm, r4, quantized=True) / tensor_throughput(params, vulkan, r4, quantized=True)
    assert ratio == pytest.approx(2.0, rel=1e-6)


def _micro_batch(model_id: str, quant: str, params: SpeedParameters, position: int = 0):
    from rigplan.speed.prefill import device_micro_batch

    m, dev = one_device(model_id, "radeon-pro-w7900", quant)
    behaviour = EngineBehaviour(flash_attention=True, amd_vector_basis=True)
    return device_micro_batch(params, behaviour, dev, m, position, 512)


def test_attention_efficiency_scales_the_attention_term_alone():
    full = _micro_batch("llama-3.1-8b", "q4_k_m", SpeedParameters(), position=8192)
    half = _micro_batch("llama-3.1-8b", "q4_k_m", SpeedParameters(attention_efficiency=0.5), position=8192)
    assert half.attention_s == pytest.approx(2 * full.attention_s)
    assert (half.matmul_s, half.overhead_s) == (full.matmul_s, full.overhead_s)


@pytest.mark.parametrize(
    ("model_id", "quant", "calls"),
    # Qwen3-30B-A3B: 48 MoE layers; 512 tokens × 8 of 128 experts touch ~all 128 experts.
    [
        ("qwen3-30b-a3b", "bf16", (48 * 120, 48 * 128)),
        ("qwen3-30b-a3b", "q4_k_m", (0, 0)),
        ("qwen3-8b", "bf16", (0, 0)),
    ],
)
def test_only_16_bit_moe_experts_pay_a_call_per_expert(model_id, quant, calls):
    base = _micro_batch(model_id, quant, SpeedParameters())
    with_calls = _micro_batch(model_id, quant, SpeedParameters(float_expert_call_s=1e-6))
    n = round((with_calls.overhead_s - base.overhead_s) / 1e-6)
    assert calls[0] <= n <= calls[1]


def test_decode_charges_each_touched_expert_once_per_moe_layer():
    from rigplan.speed.decode import device_step

    m, dev = one_device("qwen3-30b-a3b", "rtx-4090", "q4_k_m")
    step = lambda p: device_step(p, EngineBehaviour(), dev, m, 2.0, 512, 1).total_s  # noqa: E731
    extra = step(SpeedParameters(active_expert_overhead_s=1e-6)) - step(SpeedParameters())
    assert extra == pytest.approx(48 * 8 * 1e-6)  # 48 MoE layers x 8 active experts at batch 1


def test_a_row_whose_repetitions_disagree_is_left_out_with_its_reason():
    # geerlingguy/ai-benchmarks#43: RTX 4090 Vulkan TinyLlama pp512 printed 10802.35 ± 9881.63.
    reasons = dict(dataset.excluded_rows())
    assert "repetitions disagree" in reasons["llamacpp_current.csv:142"]
    assert "llamacpp_current.csv:143" not in reasons  # pp4096 of the same run: 18709 ± 60
    assert all(m.ref != "llamacpp_current.csv:142" for m in dataset.measurements())
