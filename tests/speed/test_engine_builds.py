"""Engine builds as profiles: the build picks the era, the backend the profile, flash attention
the attention cost; MoE decode is set by the active experts' bytes."""

from __future__ import annotations

import pytest

from rigplan.calibration.load import load_profiles
from rigplan.estimate import estimate


def speed(*args, **kw):
    kw.setdefault("use_user_calibration", False)
    return estimate(*args, **kw).speed


def test_default_is_the_newest_profile_and_names_its_builds():
    s = speed("llama-3-8b", "rtx-4090")
    assert s.engine_profile.startswith("llama.cpp-cuda@")
    assert "builds b" in s.engine_profile


@pytest.mark.parametrize(("version", "profile"), [("b2843", "llama.cpp-cuda-2024@"), ("b2000", "llama.cpp-cuda-2024@")])
def test_an_old_build_uses_the_may_2024_profile(version, profile):
    assert speed("llama-3-8b", "rtx-4090", engine_version=version).engine_profile.startswith(profile)


def test_a_new_build_uses_the_current_profile():
    newest = max(p.first_build for p in load_profiles().values() if p.backend == "cuda")
    assert speed("llama-3-8b", "rtx-4090", engine_version=f"b{newest + 500}").engine_profile.startswith(
        "llama.cpp-cuda@"
    )


def test_current_builds_decode_small_models_faster_than_may_2024_on_fast_gpus():
    # CUDA graphs removed most of the per-layer launch cost (issue 12).
    old = speed("llama-2-7b", "rtx-5090", quant="q4_0", engine_version="b2843").decode_tokens_per_s
    new = speed("llama-2-7b", "rtx-5090", quant="q4_0").decode_tokens_per_s
    assert new > 1.5 * old


def test_flash_attention_makes_long_prompts_faster():
    on = speed("llama-3.1-8b", "rtx-4090", prompt_tokens=16384, output_tokens=0, flash_attention=True)
    off = speed("llama-3.1-8b", "rtx-4090", prompt_tokens=16384, output_tokens=0, flash_attention=False)
    assert on.prefill_tokens_per_s > off.prefill_tokens_per_s


@pytest.mark.parametrize(("rig", "backend"), [("rx-7900-xtx", "vulkan"), ("rx-7900-xtx", "rocm")])
def test_backend_picks_its_profile_or_borrows_with_a_warning(rig, backend):
    e = estimate("llama-3-8b", rig, backend=backend, use_user_calibration=False)
    own = f"llama.cpp-{backend}" in load_profiles()
    assert e.speed.engine_profile.startswith(f"llama.cpp-{backend}@") == own
    assert own or any("borrow" in w or "no llama.cpp profile" in w for w in e.warnings)


@pytest.mark.parametrize("rig", ["rtx-4090", "rtx-3090"])
def test_moe_decode_is_set_by_the_active_experts_bytes(rig):
    from rigplan.speed import predict, select_profile
    from rigplan.speed.decode import Step

    e = estimate("qwen3-30b-a3b", rig, quant="q4_k_m", prompt_tokens=0, output_tokens=128, use_user_calibration=False)
    profile = select_profile(load_profiles(), e.engine, e.rig)
    from rigplan.speed import SpeedWorkload

    decode, _, _ = predict(
        profile, e.model, e.rig, e.memory, SpeedWorkload(0, 128, 128), e.link, engine_family="llama.cpp", quant=e.quant
    )
    assert decode is not None
    step: Step = decode[1]
    dev = step.slowest
    assert dev is not None
    # A token streams the 8 active experts of 128 (plus attention and the head): ~1/8 of the file.
    assert dev.bytes_read < 0.2 * e.memory.weights_bytes
    # Streaming those bytes is the largest single term, above the ALU and launch terms.
    assert dev.memory_s > max(dev.alu_s, dev.launch_s)
    q8 = speed("qwen3-30b-a3b", rig, quant="q8_0", prompt_tokens=0, output_tokens=128)
    assert e.speed.decode_tokens_per_s > 1.2 * q8.decode_tokens_per_s
    dense = speed("qwen3-32b", rig, quant="q4_k_m", prompt_tokens=0, output_tokens=128)
    assert e.speed.decode_tokens_per_s > 3 * dense.decode_tokens_per_s  # 3.3 B active vs 32.8 B


def test_range_says_how_far_it_extrapolates():
    s = speed("llama-3-8b", "rtx-4090")
    assert s.extrapolation.split(";")[0] in ("GPU seen", "same architecture", "new architecture", "new vendor")
    assert "extrapolation:" in estimate("llama-3-8b", "rtx-4090").provenance["speed.decode_tokens_per_s_range"].formula


def test_a_build_past_the_fitted_ones_is_priced_as_the_newest_and_the_range_says_so():
    import dataclasses

    from rigplan.speed import with_settings
    from rigplan.speed.settings import SpeedSettings

    cuda = load_profiles()["llama.cpp-cuda"]
    assert cuda.fitted_builds is not None
    last = cuda.fitted_builds[1]
    # Whatever the fitted build-era gain, a later build is not extrapolated past the rows.
    steep = dataclasses.replace(
        cuda, parameters=dataclasses.replace(cuda.parameters, prefill_speedup_per_kilobuild=1.5)
    )
    assert with_settings(steep, SpeedSettings(engine_version=f"b{last + 4000}")).behaviour.build == last
    assert with_settings(steep, SpeedSettings(engine_version=f"b{last - 100}")).behaviour.build == last - 100
    kw = {"quant": "q4_k_m", "prompt_tokens": 2048, "output_tokens": 128}
    at_last = speed("llama-3.1-8b", "rtx-4090", engine_version=f"b{last}", **kw)
    past = speed("llama-3.1-8b", "rtx-4090", engine_version=f"b{last + 4000}", **kw)
    assert past.prefill_tokens_per_s == pytest.approx(at_last.prefill_tokens_per_s, rel=1e-9)
    assert not any("past the fitted builds" in r for r in at_last.off_data)
    assert any(f"b{last + 4000} is past the fitted builds" in r for r in past.off_data)
    lo, hi = past.prefill_tokens_per_s_range or (0.0, 0.0)
    lo0, hi0 = at_last.prefill_tokens_per_s_range or (0.0, 0.0)
    assert lo < lo0 and hi > hi0  # wider: the estimate travels past its rows
