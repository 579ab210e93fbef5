"""No input gives a traceback: every failure of the public API is a RigplanError (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rigplan import RigplanError, estimate

NAMES = st.one_of(
    st.sampled_from(["llama-3-8b", "mixtral-8x7b", "deepseek-v3", "gemma-2-9b", "qwen2.5-72b"]),
    st.text(max_size=20),
)
RIGS = st.one_of(
    st.sampled_from(["rtx-4090", "2x rtx-3090", "rtx-4090 + rtx-3090", "2 nodes x 8x h100-sxm", "m2-ultra-192gb"]),
    st.text(max_size=30),
    st.from_regex(r"\A\d{1,3} ?[x×] ?(rtx-4090|h100-sxm|foo)( \+ \d{0,2}x? ?l4)?\Z"),
)
NUMBERS = st.one_of(st.none(), st.integers(min_value=-(10**9), max_value=10**9))
CHOICE = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.sampled_from(
        ["q4_k_m", "4bit", "bf16", "fp8", "layer", "tensor", "row", "pcie4", "nvlink", "f16", "q8_0", "auto"]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=NAMES,
    rig=RIGS,
    quant=CHOICE,
    engine=st.sampled_from(["llama.cpp", "vllm", "exllamav2", "transformers", "sglang", "ollama", "nope"]),
    context=NUMBERS,
    batch=st.integers(-3, 300),
    prompt=st.integers(-5, 10**6),
    output=st.integers(-5, 10**5),
    kv=CHOICE,
    split=CHOICE,
    tp=NUMBERS,
    pp=NUMBERS,
    layers=st.one_of(NUMBERS, st.just("auto"), st.text(max_size=4)),
    link=CHOICE,
    lanes=st.one_of(st.none(), st.integers(-1, 32)),
    host=st.one_of(st.none(), st.floats(-10, 1e4)),
)
def test_public_api_raises_only_rigplan_errors(
    model, rig, quant, engine, context, batch, prompt, output, kv, split, tp, pp, layers, link, lanes, host
):
    try:
        result = estimate(
            model,
            rig,
            quant=quant,
            engine=engine,
            context=context,
            batch=batch,
            prompt_tokens=prompt,
            output_tokens=output,
            kv_dtype=kv,
            split=split,
            tensor_parallel=tp,
            pipeline_parallel=pp,
            gpu_layers=layers,
            link=link,
            lanes=lanes,
            host_ram_gb=host,
            use_user_calibration=False,
        )
    except RigplanError as exc:
        assert str(exc) and "\n" not in str(exc)  # one line that says what was wrong
    else:
        assert isinstance(result.fits, bool)
        assert all(d.total_bytes >= 0 for d in result.memory.devices)


def test_absurd_shapes_are_refused_not_enumerated():
    """A corrupt config with 10^12 layers must fail at once (it used to hang)."""
    import pytest

    from rigplan import InvalidValueError

    fields = {"hidden_size": 4096, "num_layers": 10**12, "num_heads": 32, "ffn_size": 14336, "vocab_size": 32000}
    with pytest.raises(InvalidValueError, match="num_layers"):
        estimate(fields, "rtx-4090")
    with pytest.raises(InvalidValueError, match="num_layers"):
        estimate({**fields, "num_layers": 0}, "rtx-4090")
