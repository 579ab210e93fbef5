"""Invariants of the memory model (hypothesis): monotone in context, batch and bits;
shards add up to the whole; never negative."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rigplan import estimate

MODELS = st.sampled_from(["llama-3-8b", "llama-2-13b", "mixtral-8x7b", "gemma-2-9b", "qwen2.5-7b", "deepseek-v3"])
RIGS = st.sampled_from(["rtx-4090", "2x rtx-3090", "rtx-4090 + rtx-3090", "4x a100-sxm-80gb", "m2-ultra-192gb"])
ENGINES = st.sampled_from(["llama.cpp", "vllm", "exllamav2", "transformers"])
CONTEXTS = st.integers(min_value=1, max_value=32768)


def _run(model, rig, engine, **kw):
    if engine in ("vllm", "exllamav2") and rig == "m2-ultra-192gb":
        rig = "rtx-4090"
    return estimate(
        model, rig, engine=engine, prompt_tokens=0, output_tokens=0, force=True, use_user_calibration=False, **kw
    )


def _need(e):
    # vLLM reserves its whole share; compare what the workload needs: weights + KV of the sequences.
    return sum(d.total_bytes for d in e.memory.devices) + e.memory.host_bytes


@settings(max_examples=60, deadline=None)
@given(MODELS, RIGS, st.sampled_from(["llama.cpp", "exllamav2", "transformers"]), CONTEXTS, CONTEXTS)
def test_more_context_never_needs_less_memory(model, rig, engine, a, b):
    small, large = sorted((a, b))
    assert _need(_run(model, rig, engine, context=small)) <= _need(_run(model, rig, engine, context=large))


@settings(max_examples=40, deadline=None)
@given(MODELS, RIGS, st.integers(1, 16), st.integers(1, 16))
def test_more_sequences_never_need_less_memory(model, rig, a, b):
    small, large = sorted((a, b))
    assert _need(_run(model, rig, "llama.cpp", context=2048, batch=small)) <= _need(
        _run(model, rig, "llama.cpp", context=2048, batch=large)
    )


@settings(max_examples=40, deadline=None)
@given(
    MODELS,
    st.sampled_from([("q2_k", "q4_k_m"), ("q4_k_m", "q6_k"), ("q6_k", "q8_0"), ("q8_0", "f16"), ("q4_0", "q8_0")]),
)
def test_more_bits_never_fewer_bytes(model, pair):
    low, high = pair
    assert (
        _run(model, "h200-sxm", "llama.cpp", quant=low, context=512).memory.weights_bytes
        <= _run(model, "h200-sxm", "llama.cpp", quant=high, context=512).memory.weights_bytes
    )


@settings(max_examples=40, deadline=None)
@given(MODELS, RIGS, ENGINES, CONTEXTS)
def test_never_negative_and_shards_add_up(model, rig, engine, context):
    e = _run(model, rig, engine, context=context)
    for d in e.memory.devices:
        for value in (d.weights_bytes, d.kv_cache_bytes, d.activations_bytes, d.overhead_bytes, d.usable_bytes):
            assert value >= 0
    if engine == "llama.cpp":  # layer split: GPU weights + host weights = the file
        p = e.memory.placement
        assert sum(len(d.layers) for d in e.memory.devices) + len(p.host_layers) == e.model.num_layers
        assert sum(d.weights_bytes for d in e.memory.devices) <= e.memory.weights_bytes
