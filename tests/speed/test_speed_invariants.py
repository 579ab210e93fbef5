"""Invariants of the speed model over the catalogue (hypothesis)."""

from __future__ import annotations

import dataclasses
import math

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rigplan import load_catalog
from rigplan.errors import RigplanError
from rigplan.estimate import estimate
from rigplan.rig import Rig

MODELS = [
    "llama-3-8b",
    "llama-2-7b",
    "llama-3-70b",
    "mixtral-8x7b",
    "gemma-2-9b",
    "qwen2.5-7b",
    "mistral-7b",
    "deepseek-v3",
    "qwen3-30b-a3b",
    "llama-3.2-1b",
]
ENGINES = ["llama.cpp", "vllm", "sglang", "tensorrt-llm", "exllamav2", "transformers"]
GPUS = sorted(load_catalog().gpus)
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(model, rig, engine, **kw):
    try:
        return estimate(model, rig, engine=engine, force=True, **kw)
    except RigplanError:
        assume(False)
        raise AssertionError("unreachable") from None


def finite_positive(x):
    return x is None or (math.isfinite(x) and x > 0)


@SETTINGS
@given(
    model=st.sampled_from(MODELS),
    gpu=st.sampled_from(GPUS),
    count=st.sampled_from([1, 2, 4]),
    engine=st.sampled_from(ENGINES),
    prompt=st.integers(0, 16384),
    output=st.integers(0, 4096),
    batch=st.sampled_from([1, 2, 16]),
)
def test_speeds_are_finite_positive_and_ranges_hold_the_point(model, gpu, count, engine, prompt, output, batch):
    assume(prompt + output > 0)
    e = run(model, f"{count}x {gpu}", engine, prompt_tokens=prompt, output_tokens=output, batch=batch)
    s = e.speed
    for x in (s.decode_tokens_per_s, s.decode_throughput_tokens_per_s, s.prefill_tokens_per_s, s.ttft_s):
        assert finite_positive(x)
    assert (s.decode_tokens_per_s is None) == (output == 0)
    assert (s.prefill_tokens_per_s is None) == (prompt == 0)
    for point, rng in (
        (s.decode_tokens_per_s, s.decode_tokens_per_s_range),
        (s.prefill_tokens_per_s, s.prefill_tokens_per_s_range),
    ):
        if point is None:
            assert rng is None
        else:
            assert rng is not None and 0 < rng[0] <= point <= rng[1]
    assert s.engine_profile


@SETTINGS
@given(
    model=st.sampled_from(MODELS),
    gpu=st.sampled_from(GPUS),
    engine=st.sampled_from(ENGINES),
    short=st.integers(0, 8192),
    extra=st.integers(1, 24000),
    batch=st.sampled_from([1, 4]),
)
def test_more_context_never_decodes_faster(model, gpu, engine, short, extra, batch):
    a = run(model, gpu, engine, prompt_tokens=short, output_tokens=64, batch=batch).speed
    b = run(model, gpu, engine, prompt_tokens=short + extra, output_tokens=64, batch=batch).speed
    assert b.decode_tokens_per_s <= a.decode_tokens_per_s * (1 + 1e-9)


@SETTINGS
@given(
    model=st.sampled_from(MODELS),
    gpu=st.sampled_from(GPUS),
    engine=st.sampled_from(ENGINES),
    factor=st.floats(1.01, 4.0),
    prompt=st.integers(1, 8192),
)
def test_more_bandwidth_is_never_slower(model, gpu, engine, factor, prompt):
    g = load_catalog().gpus[gpu]
    faster = dataclasses.replace(g, bandwidth_gb_per_s=g.bandwidth_gb_per_s * factor)
    a = run(model, Rig((g,)), engine, prompt_tokens=prompt, output_tokens=32).speed
    b = run(model, Rig((faster,)), engine, prompt_tokens=prompt, output_tokens=32).speed
    assert b.decode_tokens_per_s >= a.decode_tokens_per_s * (1 - 1e-9)
    assert b.prefill_tokens_per_s >= a.prefill_tokens_per_s * (1 - 1e-9)


@SETTINGS
@given(
    model=st.sampled_from(MODELS),
    gpu=st.sampled_from(GPUS),
    engine=st.sampled_from(["vllm", "llama.cpp"]),
    small=st.sampled_from([1, 2, 4, 8]),
    more=st.sampled_from([1, 4, 32]),
)
def test_bigger_batches_never_lower_aggregate_throughput(model, gpu, engine, small, more):
    a = run(model, gpu, engine, prompt_tokens=64, output_tokens=64, batch=small).speed
    b = run(model, gpu, engine, prompt_tokens=64, output_tokens=64, batch=small + more).speed
    assert b.decode_throughput_tokens_per_s >= a.decode_throughput_tokens_per_s * (1 - 1e-9)
    assert b.decode_tokens_per_s <= a.decode_tokens_per_s * (1 + 1e-9)
