"""SoCs that share LPDDR memory and their power budget with the CPU (DGX Spark, Strix Halo) reach
``prefill_efficiency_unified`` of the prompt speed the rest of the model gives them; discrete
cards and Apple silicon (its own Metal profiles) are unchanged."""

from __future__ import annotations

import dataclasses
from statistics import geometric_mean

import pytest

from one_device import one_device
from rigplan.calibration import priors
from rigplan.calibration.load import load_profiles, profile_rows
from rigplan.speed.prefill import device_micro_batch
from rigplan.speed.profile import EngineBehaviour, SpeedParameters

BEHAVIOUR = EngineBehaviour(flash_attention=True, int8_mma_prefill=True)
PLAIN = SpeedParameters(dequant_sm_cycles_per_weight=0.2)
SOC = dataclasses.replace(PLAIN, prefill_efficiency_unified=0.8)


def _total_s(gpu: str, params: SpeedParameters) -> float:
    m, dev = one_device("llama-3.1-8b", gpu, "q4_k_m")
    return device_micro_batch(params, BEHAVIOUR, dev, m, 4096, 512).total_s


@pytest.mark.parametrize(
    ("gpu", "slower"),
    [("dgx-spark", True), ("ryzen-ai-max-395-128gb", True), ("rtx-4090", False), ("m2-ultra-192gb", False)],
)
def test_only_lpddr_socs_run_at_the_share(gpu, slower):
    assert _total_s(gpu, SOC) == pytest.approx(_total_s(gpu, PLAIN) / (0.8 if slower else 1.0))


def test_the_cuda_fit_finds_the_socs_slower_and_the_other_backends_take_it():
    profiles = load_profiles()
    share = profiles["llama.cpp-cuda"].parameters.prefill_efficiency_unified
    assert 0.5 < share < 1.0
    for name in ("llama.cpp-rocm", "llama.cpp-vulkan"):
        assert profiles[name].parameters.prefill_efficiency_unified == pytest.approx(share)


def test_a_fit_without_the_dgx_spark_still_prices_it_as_a_soc():
    # The CUDA prior's share comes from the other SoC (Strix Halo's Vulkan rows: 0.92), so the
    # leave-one-GPU-out fit that never sees the DGX Spark predicts its prompts about as the full
    # fit does; with the prior at 1 it predicted them ~6 % faster (eighth session's profile).
    assert priors.LLAMA_CPP_CUDA.parameters.prefill_efficiency_unified < 1.0
    rows = [r for r in profile_rows("llama.cpp-cuda") if r["gpu"] == "dgx-spark" and r["kind"] == "prefill"]
    assert len(rows) >= 20
    assert geometric_mean([r["held_out"] / r["fitted"] for r in rows]) == pytest.approx(1.0, abs=0.03)
