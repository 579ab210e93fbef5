"""The engine × hardware support table: what is refused, what runs with a warning (table-driven)."""

from __future__ import annotations

import pytest

from rigplan.backends import default_backend, parse_build
from rigplan.catalog import load_catalog
from rigplan.catalog.support import load_support_rules
from rigplan.errors import InvalidValueError, UnsupportedError
from rigplan.estimate import estimate

REFUSED = [
    # (model, rig, engine, quant, backend, message pattern) — each row is one rule of the table.
    ("llama-3-8b", "tesla-p40", "exllamav2", None, None, r"ExLlamaV2 computes in FP16.*1/64"),
    ("llama-3-8b", "tesla-p40", "vllm", None, None, r"compute capability 7\.0"),
    ("llama-3-8b", "v100-pcie-32gb", "vllm", "fp8", None, r"FP8 weights need compute capability 7\.5"),
    ("llama-3-8b", "mi300x", "tensorrt-llm", None, None, r"NVIDIA GPUs only"),
    ("llama-3-8b", "m2-ultra-192gb", "vllm", None, None, r"Apple silicon"),
    ("llama-3-8b", "rtx-3090 + rx-7900-xtx", "vllm", None, None, r"mixing GPU vendors"),
    ("llama-3-8b", "rtx-3090 + rx-7900-xtx", "llama.cpp", None, "cuda", r"backend cuda does not drive rx-7900-xtx"),
    ("llama-3-8b", "rtx-4090", "llama.cpp", None, "rocm", r"backend rocm does not drive rtx-4090"),
    ("llama-3-8b", "rtx-4090", "llama.cpp", None, "metal", r"backend metal"),
]


@pytest.mark.parametrize(("model", "rig", "engine", "quant", "backend", "pattern"), REFUSED, ids=lambda x: str(x))
def test_refused_combinations_raise_with_the_reason(model, rig, engine, quant, backend, pattern):
    with pytest.raises(UnsupportedError, match=pattern):
        estimate(model, rig, engine=engine, quant=quant, backend=backend, use_user_calibration=False)


WARNED = [
    ("llama-3-8b", "a100-pcie-80gb", "vllm", "fp8", None, "weight-only"),
    ("llama-3-8b", "tesla-p40", "llama.cpp", None, None, "no tensor cores"),
    ("llama-3-8b", "mi300x", "vllm", None, None, "ROCm build"),
    ("qwen3-30b-a3b", "2x radeon-pro-w7900", "llama.cpp", "bf16", "vulkan", "no BF16 mat-vec for MoE experts"),
]


@pytest.mark.parametrize(
    ("model", "quant", "backend"),
    [("qwen3-30b-a3b", "q8_0", "vulkan"), ("qwen3-30b-a3b", "bf16", "rocm"), ("gemma-3-27b", "bf16", "vulkan")],
)
def test_bf16_moe_warning_only_for_bf16_experts_on_vulkan(model, quant, backend):
    e = estimate(model, "2x radeon-pro-w7900", quant=quant, backend=backend, use_user_calibration=False)
    assert not any("vulkan-bf16-moe-decode" in w for w in e.warnings), e.warnings


@pytest.mark.parametrize(("model", "rig", "engine", "quant", "backend", "words"), WARNED, ids=lambda x: str(x))
def test_slow_or_caveated_combinations_run_with_a_warning(model, rig, engine, quant, backend, words):
    e = estimate(model, rig, engine=engine, quant=quant, backend=backend, use_user_calibration=False)
    assert any(words in w for w in e.warnings), e.warnings
    assert e.to_dict()["warnings"] == list(e.warnings)


def test_a_rig_mixing_vendors_runs_on_the_vulkan_profile_without_a_caveat():
    # The Vulkan profile is fitted on Vulkan rows: no warning that its prompts run slower than
    # CUDA/ROCm (2024's 2x no longer holds: RX 9070 XT pp512 4972 on Vulkan vs 4790 on ROCm).
    e = estimate("llama-3-8b", "rtx-3090 + rx-7900-xtx", use_user_calibration=False)
    assert e.to_dict()["speed"]["engine_profile"].startswith("llama.cpp-vulkan@")
    assert e.warnings == ()


def test_plain_supported_estimate_has_no_warnings():
    assert estimate("llama-3-8b", "rtx-4090", use_user_calibration=False).warnings == ()


def test_every_rule_has_a_source_a_date_and_a_known_engine():
    engines = {"llama.cpp", "ollama", "vllm", "sglang", "tensorrt-llm", "exllamav2", "transformers"}
    rules = load_support_rules()
    assert len(rules) >= 10
    for rule in rules:
        assert rule.source.strip() and rule.reason.strip()
        assert set(rule.engines) <= engines, rule.id
        assert rule.verdict in ("refuse", "warn")


@pytest.mark.parametrize(
    ("rig", "backend"),
    [("rtx-4090", "cuda"), ("mi300x", "rocm"), ("m2-ultra-192gb", "metal"), ("rtx-3090 + rx-7900-xtx", "vulkan")],
)
def test_default_backend_follows_the_vendor(rig, backend):
    from rigplan.rig import parse_rig

    assert default_backend(parse_rig(rig, load_catalog()).gpus) == backend


@pytest.mark.parametrize(("text", "build"), [("b2843", 2843), ("B6400", 6400), ("7100", 7100), (6400, 6400)])
def test_build_numbers_parse(text, build):
    assert parse_build(text) == build


@pytest.mark.parametrize("bad", ["v1.2", "abc123def", "", -3])
def test_bad_build_numbers_are_refused(bad):
    with pytest.raises(InvalidValueError, match="engine_version"):
        estimate("llama-3-8b", "rtx-4090", engine_version=bad)


def test_bad_backend_is_refused():
    with pytest.raises(InvalidValueError, match="backend: must be one of cuda, rocm"):
        estimate("llama-3-8b", "rtx-4090", backend="opencl")
