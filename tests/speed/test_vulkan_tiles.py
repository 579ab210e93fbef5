"""Vulkan's matmul shader gave AMD GPUs with cooperative matrices (RDNA3 and later) its large
128x128 tiles in b7707 (ggml-org/llama.cpp#18749; 64x64 before): from that build their prompt
matmuls run ``amd_coopmat_tiles_speedup`` faster. GCN, CDNA and NVIDIA cards are unchanged."""

from __future__ import annotations

import dataclasses

import pytest

from one_device import one_device
from rigplan.catalog import load_catalog
from rigplan.speed import hardware
from rigplan.speed.prefill import BUILD_ERA_REFERENCE, MicroBatchCost, device_micro_batch
from rigplan.speed.profile import EngineBehaviour, SpeedParameters

CAT = load_catalog()
TILED = EngineBehaviour(flash_attention=True, amd_coopmat_tiles_build=7707, build=7941)
OLDER = dataclasses.replace(TILED, build=7706)
PARAMS = SpeedParameters(dequant_sm_cycles_per_weight=0.2, amd_coopmat_tiles_speedup=1.25)


def _micro_batch(gpu: str, behaviour: EngineBehaviour) -> MicroBatchCost:
    m, dev = one_device("llama-3.1-8b", gpu, "q4_k_m")
    return device_micro_batch(PARAMS, behaviour, dev, m, 0, 512)


@pytest.mark.parametrize(
    ("gpu", "gains"),
    [
        ("rx-7900-xtx", True),
        ("rx-9070-xt", True),
        ("ryzen-ai-max-395-128gb", True),
        ("mi50-32gb", False),
        ("rtx-4090", False),
    ],
)
def test_matmuls_gain_from_the_build_on_rdna3_and_later(gpu, gains):
    new, old = _micro_batch(gpu, TILED), _micro_batch(gpu, OLDER)
    factor = PARAMS.amd_coopmat_tiles_speedup if gains else 1.0
    assert new.matmul_s == pytest.approx(old.matmul_s / factor)
    assert new.dequant_s == pytest.approx(old.dequant_s / factor)
    assert new.attention_s == old.attention_s  # the flash-attention shader is another kernel


def test_without_a_build_the_reference_build_decides():
    """An estimate without a build is priced at prefill.BUILD_ERA_REFERENCE (b7500: before b7707)."""
    assert TILED.amd_coopmat_tiles_build > BUILD_ERA_REFERENCE
    unset = dataclasses.replace(TILED, build=0)
    assert _micro_batch("rx-9070-xt", unset).matmul_s == _micro_batch("rx-9070-xt", OLDER).matmul_s


@pytest.mark.parametrize("gpu", ["rx-7900-xtx", "rx-9070-xt", "ryzen-ai-max-395-128gb", "radeon-pro-w7900"])
def test_rdna3_and_later_have_coopmat(gpu):
    assert hardware.has_amd_coopmat(CAT.gpus[gpu])


@pytest.mark.parametrize("gpu", ["mi50-32gb", "mi300x", "rtx-4090"])
def test_gcn_cdna_and_nvidia_do_not(gpu):
    assert not hardware.has_amd_coopmat(CAT.gpus[gpu])


def test_only_the_vulkan_profile_has_the_tiles():
    from rigplan.calibration import priors

    assert priors.LLAMA_CPP_VULKAN.behaviour.amd_coopmat_tiles_build == 7707
    for p in (priors.LLAMA_CPP_CUDA, priors.LLAMA_CPP_CUDA_2024, priors.LLAMA_CPP_ROCM, priors.LLAMA_CPP_METAL):
        assert p.behaviour.amd_coopmat_tiles_build == 0, p.name


def test_the_shipped_vulkan_fit_prices_the_step_as_a_gain():
    """#18749 measured 1.36-1.76x on a Radeon 8060S; the fit on all Vulkan rows must agree on
    the direction and stay within a plausible band."""
    from rigplan.calibration.load import load_profiles

    assert 1.05 < load_profiles()["llama.cpp-vulkan"].parameters.amd_coopmat_tiles_speedup < 2.0
