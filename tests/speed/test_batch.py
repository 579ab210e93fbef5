"""The batch serving model (speed/batch.py, speed/serving.py): shapes, invariants, schedules."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rigplan.catalog import load_catalog
from rigplan.estimate import estimate
from rigplan.quant import get_quant
from rigplan.speed.batch import (
    ServingBehaviour,
    chunked_schedule,
    finite_run_throughput,
    gemm_precision,
    kernels_per_layer,
    round_step_s,
)

CATALOG = load_catalog()


@pytest.mark.parametrize(
    ("model", "layer", "kernels"),
    [
        ("llama-3.1-8b", 0, 10),  # dense GQA
        ("mixtral-8x7b", 0, 18),  # + MoE
        ("deepseek-v3", 0, 17),  # first dense layers, MLA
        ("deepseek-v3", 10, 25),  # MLA + MoE
    ],
)
def test_kernels_per_layer(model, layer, kernels):
    assert kernels_per_layer(CATALOG.models[model], layer) == kernels


@pytest.mark.parametrize(
    ("quant", "gpu", "precision"),
    [
        ("fp4", "b200", "fp4"),
        ("fp4", "h100-sxm", "16"),  # no FP4 tensor cores: weight-only Marlin
        ("mxfp4", "rtx-pro-6000", "fp4"),
        ("fp8", "h100-sxm", "fp8"),
        ("int4", "h100-sxm", "16"),
    ],
)
def test_gemm_precision(quant, gpu, precision):
    assert gemm_precision(get_quant(quant), CATALOG.gpus[gpu]) == precision


def test_chunked_schedule_spreads_prompts_over_output_steps():
    s = chunked_schedule(8192, 64, 1000, 1000)
    assert s.steps_per_round == 1000 and s.decode_per_step == 64 and s.prefill_per_step == 64
    # 2048 sequences of 2048 + 128 tokens cannot fit in 128 steps of 8192 tokens
    s = chunked_schedule(8192, 2048, 2048, 128)
    assert s.steps_per_round == pytest.approx(2048 * 2176 / 8192, abs=1)
    assert s.decode_per_step + s.prefill_per_step <= 8192 + 1


def _toy_step(decode, context, prefill=0.0, position=0.0):
    """A step of 10 ms plus 1 ms per 100 tokens, plus 5 ms once any prompt token rides along (the
    experts a prompt touches)."""
    return 0.010 + (decode + prefill) * 1e-5 + (0.005 if prefill else 0.0)


def test_round_step_shares_a_chunk_over_the_round_for_moe_at_low_concurrency():
    plan = chunked_schedule(8192, 1, 8000, 1000)  # one user: 8 prompt tokens spread per step
    spread = _toy_step(1, 0, plan.prefill_per_step)
    assert round_step_s(_toy_step, plan, 8192, 8000, 0, moe=False) == pytest.approx(spread)
    chunked = round_step_s(_toy_step, plan, 8192, 8000, 0, moe=True)
    # 999 pure decode steps and one step with the 8000-token prompt: the 5 ms is paid once
    expected = (999 * _toy_step(1, 0) + _toy_step(1, 0, 8000)) / 1000
    assert chunked == pytest.approx(expected)
    assert chunked < spread


def test_round_step_is_the_spread_step_once_a_chunk_fits_every_step():
    plan = chunked_schedule(8192, 2048, 2048, 128)
    mixed = _toy_step(plan.decode_per_step, 0, plan.prefill_per_step)
    assert round_step_s(_toy_step, plan, 8192, 2048, 0, moe=True) == pytest.approx(mixed)


def test_vllm_default_max_num_seqs_by_gpu():
    b = ServingBehaviour()
    assert b.max_num_seqs(CATALOG.gpus["h100-sxm"]) == 1024
    assert b.max_num_seqs(CATALOG.gpus["a100-sxm-80gb"]) == 256  # vLLM keeps A100s small
    assert b.max_num_seqs(CATALOG.gpus["l40s"]) == 256


def _vllm(batch, **kw):
    return estimate("llama-3.1-8b", "h100-sxm", engine="vllm", batch=batch, prompt_tokens=512, output_tokens=256, **kw)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 400), st.integers(1, 400))
def test_per_user_decode_falls_and_total_rises_with_batch(a, b):
    lo, hi = sorted((a, b))
    s_lo, s_hi = _vllm(lo).speed, _vllm(hi).speed
    assert s_hi.decode_tokens_per_s <= s_lo.decode_tokens_per_s * (1 + 1e-9)
    assert s_hi.decode_throughput_tokens_per_s >= s_lo.decode_throughput_tokens_per_s * (1 - 1e-9)
    for s in (s_lo, s_hi):
        lo_r, hi_r = s.output_throughput_tokens_per_s_range
        assert 0 < lo_r <= s.output_throughput_tokens_per_s <= hi_r


def test_batch_max_is_kv_pool_or_max_num_seqs():
    e = _vllm("max")
    pool = e.memory.kv_pool_tokens
    assert e.speed.batch == min(1024, pool // (512 + 256))
    assert e.to_dict()["speed"]["batch"] == e.speed.batch
    assert e.fits


def test_tensorrt_llm_offline_batch_reserves_prompt_plus_output():
    """GUARANTEED_NO_EVICT (TensorRT-LLM's default capacity policy) admits a request only with KV
    blocks for its prompt and every token it may generate, so the offline batch is the pool over
    prompt + output, not prompt + output / 2."""
    e = estimate(
        "llama-3.1-70b",
        "8x h100-sxm",
        engine="tensorrt-llm",
        quant="fp8",
        kv_dtype="fp8",
        prompt_tokens=1024,
        output_tokens=4096,
        batch="max",
    )
    pool = e.memory.kv_pool_tokens
    assert pool is not None
    assert e.speed.batch == pool // (1024 + 4096) < 2048


@pytest.mark.parametrize(
    ("batch", "requests", "share"),
    [
        (533, 800, 800 / (2 * 533)),  # two waves, the second half full
        (1000, 3000, 1.0),  # whole waves
        (2048, 30000, 30000 / (15 * 2048)),
        (5000, 800, 1.0),  # fewer requests than the batch: one wave of all of them
    ],
)
def test_finite_run_goes_in_waves(batch, requests, share):
    """With a rate proportional to the batch (every wave as long as any other), N requests at
    most B at a time take ceil(N / B) waves."""

    def linear(b: int) -> float:
        return 10.0 * b

    steady = linear(min(batch, requests))
    assert finite_run_throughput(linear, batch, requests) == pytest.approx(steady * share)


def test_finite_run_last_wave_runs_at_its_own_batch():
    def saturating(b: int) -> float:
        return 1000.0 * b / (b + 100)

    got = finite_run_throughput(saturating, 500, 750)
    expected = 750 / (500 / saturating(500) + 250 / saturating(250))
    assert got == pytest.approx(expected)
    assert got < saturating(500)


def test_moe_reads_more_experts_as_the_batch_grows():
    one = estimate("mixtral-8x7b", "2x h100-sxm", engine="vllm", batch=1).speed.decode_step_s
    many = estimate("mixtral-8x7b", "2x h100-sxm", engine="vllm", batch=8).speed.decode_step_s
    assert many > one * 1.3  # 8 tokens touch ~7 of 8 experts instead of 2


def test_issue_example_is_tens_of_tokens_per_second():
    """Issue 13: DeepSeek-V3 int4 on 8x H100 under vLLM printed 361 tok/s; published single-user
    runs are ≈60 (tenstorrent/tt-inference-server#356: 62.1 tok/s, vLLM, 128/128)."""
    s = estimate("deepseek-v3", "8x h100-sxm", engine="vllm", quant="int4").speed
    assert 20 < s.decode_tokens_per_s < 150
    low, high = s.decode_tokens_per_s_range
    assert low <= 62.1 <= high


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tensorrt-llm"])
@pytest.mark.parametrize("batch", [1, 4, 8, 9, 64])
def test_throughput_range_never_contradicts_the_decode_range(engine, batch):
    """At ``batch`` users the output throughput is at most batch × per-user decode (prompts take
    steps too), so its range must sit at or below batch × the decode range at both ends.  Issue 13:
    DeepSeek-V3 int4 on 8x H100 printed decode 40.2–81.7 but one user's throughput 57.1–90.1."""
    s = estimate("deepseek-v3", "8x h100-sxm", engine=engine, quant="int4", batch=batch).speed
    d_lo, d_hi = s.decode_tokens_per_s_range
    t_lo, t_hi = s.output_throughput_tokens_per_s_range
    assert s.output_throughput_tokens_per_s <= batch * s.decode_tokens_per_s * (1 + 1e-9)
    assert t_lo <= batch * d_lo * (1 + 1e-9)
    assert t_hi <= batch * d_hi * (1 + 1e-9)


def test_cdna3_dense_gemms_run_at_the_sustained_matrix_clock():
    """AMD's Max-Achievable FLOPs: MI300X holds ~1.23 GHz under dense FP8 MFMA work, not the 2.1 GHz
    its spec peak assumes; GPUs without a published figure keep their spec clock."""
    from rigplan.speed.batch import dense_clock_fraction

    gpus = load_catalog().gpus
    assert dense_clock_fraction(gpus["mi300x"], "fp8") == pytest.approx(1230 / 2100)
    assert dense_clock_fraction(gpus["mi300x"], "16") == pytest.approx(1207 / 2100)
    assert dense_clock_fraction(gpus["h100-sxm"], "fp8") == 1.0


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tensorrt-llm"])
def test_one_more_user_moves_the_band_a_little_not_a_step(engine):
    """Between 8 and 16 users the band moves from the few-users one to the many-users one in
    log(users): each step's edges lie between its neighbours' (no jump at 8 -> 9)."""
    from rigplan.calibration.serving_load import load_serving_profiles
    from rigplan.speed.batch import FEW_USERS, MANY_USERS

    profile = next(p for p in load_serving_profiles().values() if engine in p.engines)
    bands = [profile.spread_at(c) for c in range(FEW_USERS, MANY_USERS + 1)]
    for edge in ("low", "high"):
        values = [getattr(b, edge) for b in bands]
        assert values == sorted(values) or values == sorted(values, reverse=True)
        steps = [abs(b - a) for a, b in itertools.pairwise(values)]
        assert max(steps) <= abs(values[-1] - values[0]) / 2 + 1e-12


def test_a_band_on_a_handful_of_rows_is_no_narrower_than_the_other():
    from rigplan.speed.batch import MIN_BAND_ROWS, _no_narrower
    from rigplan.speed.profile import Spread

    wide, narrow = Spread(-0.7, 0.7, rows=3), Spread(-0.1, 0.4, rows=MIN_BAND_ROWS - 1)
    assert _no_narrower(narrow, wide) == Spread(-0.7, 0.7, None, MIN_BAND_ROWS - 1)
    many = Spread(-0.1, 0.4, rows=MIN_BAND_ROWS)
    assert _no_narrower(many, wide) is many
