"""docs/accuracy.md holds the serving accuracy table; the shipped serving profiles hold up.

Regenerate after refitting: RIGPLAN_UPDATE_DOCS=1 python -m pytest tests/calibration/test_serving_accuracy.py
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli_runner import check_generated
from rigplan.calibration.serving_accuracy import (
    TARGET_COVERAGE,
    TARGET_MAPE,
    markdown_serving_accuracy,
    serving_accuracy,
)
from rigplan.calibration.serving_load import load_serving_profiles, serving_rows
from rigplan.estimate import estimate

DOC = Path(__file__).resolve().parents[2] / "docs" / "accuracy.md"
BLOCK = re.compile(r"(<!-- generated serving: [^\n]*-->\n)(.*?)(<!-- end generated serving -->)", re.DOTALL)


def test_accuracy_doc_serving_table_matches():
    text = DOC.read_text(encoding="utf-8")
    match = BLOCK.search(text)
    assert match, "docs/accuracy.md lost its serving block markers"
    fresh = markdown_serving_accuracy(serving_accuracy()) + "\n"
    check_generated(DOC, text[: match.start(2)] + fresh + text[match.end(2) :], "see this file's docstring")


def test_every_serving_engine_has_a_profile_and_sourced_rows():
    profiles = load_serving_profiles()
    assert {"vllm", "sglang", "tensorrt-llm"} <= set(profiles)
    for engine in ("vllm", "sglang", "tensorrt-llm"):
        rows = serving_rows(engine)
        assert rows, engine
        assert all(r["source"] and r["ref"].startswith("serving.csv:") for r in rows)


def test_max_throughput_on_unseen_gpus_is_reported_not_hidden():
    groups = {(g.engine, g.test, g.scope): g for g in serving_accuracy()}
    g = groups[("tensorrt-llm", "max throughput", "leave-one-GPU-out")]
    assert g.rows >= 100 and len(g.gpus) >= 4
    assert g.mape <= TARGET_MAPE  # issue 13: within 25 % on average on a GPU left out
    assert g.coverage >= TARGET_COVERAGE


# Published single-user decode, each inside the estimate's range (tolerance: the range itself).
@pytest.mark.parametrize(
    ("model", "rig", "engine", "quant", "prompt", "output", "measured", "source"),
    [
        ("deepseek-v3", "8x h100-sxm", "vllm", "int4", 128, 128, 62.1, "tenstorrent/tt-inference-server#356"),
        ("deepseek-v3", "8x h200-sxm", "vllm", "fp8", 8000, 1000, 63.1, "vLLM recipes: DeepSeek-V3/R1"),
        ("qwen2.5-72b", "2x h100-sxm", "vllm", "bf16", 128, 128, 32.4, "tenstorrent/tt-inference-server#143"),
        # The nearest published single-user Llama 3.x 405B figure under vLLM (no 8x H100/H200 one
        # was found printed as text): benchmark_latency batch 1 on 8x MI300X.
        ("llama-3.1-405b", "8x mi300x", "vllm", "fp8", 128, 128, 36.0, "Oracle blog: Llama 3.1 405B on MI300X"),
        # benchmark_latency batch 1 on 8x MI300X (ROCm blog, vllm-dev:20250112): 2048 output tokens
        # over the printed end-to-end 19,089 / 51,740 ms (prefill of 128 tokens included, so ~1 % low).
        ("llama-3.1-70b", "8x mi300x", "vllm", "fp8", 128, 2048, 107.3, "ROCm blog: 70B FP8 TTLT 19,089 ms"),
        ("llama-3.1-405b", "8x mi300x", "vllm", "fp8", 128, 2048, 39.6, "ROCm blog: 405B FP8 TTLT 51,740 ms"),
        # NIM 1.8.0 (TensorRT-LLM backend assumed, FP8 TP2 profile), concurrency 1, ITL 18.58 ms.
        ("llama-3.3-70b", "2x h100-sxm", "tensorrt-llm", "fp8", 5000, 500, 53.8, "NVIDIA NIM benchmarking guide"),
        # SGLang on 2 nodes of 8 H100 over InfiniBand (TP 16 assumed; checked, not fitted:
        # serving_fit.MAX_FIT_NODES): inside the range, though the point estimate is ~2x high.
        ("deepseek-v3", "2 nodes x 8x h100-sxm", "sglang", "fp8", 128, 128, 43.3, "tt-inference-server#356 (SGLang)"),
        # DeepSeek V3/R1 on vLLM / SGLang builds from before April 2025 (serving_csv.legacy_mla_build):
        # kept out of the fit and checked here as known misses — the estimate is for later builds.
        pytest.param(
            "deepseek-v3",
            "8x h200-sxm",
            "sglang",
            "fp8",
            128,
            256,
            30.29,
            "sgl-project/sglang#2643",
            marks=pytest.mark.xfail(
                strict=True,
                reason="legacy build: SGLang 0.4.1.post2 (Dec 2024; GPU not printed, H200 assumed) printed "
                "30 tok/s at batch 1, before the spring-2025 MLA / block-FP8 kernels the model describes",
            ),
        ),
        pytest.param(
            "deepseek-v3",
            "8x h100-sxm",
            "vllm",
            "int4",
            1024,
            256,
            33.3,
            "dzhsurf/deepseek-v3-r1-deploy-and-benchmarks (vLLM 0.7.3, median ITL 30 ms)",
            marks=pytest.mark.xfail(
                strict=True,
                reason="legacy build: vLLM 0.7.3 (March 2025) decoded DeepSeek-V3 AWQ at 30 ms per token on "
                "8x H100; the same setup printed 16.1 ms in mid-2025 (tt-inference-server#356, in range)",
            ),
        ),
    ],
)
def test_single_user_decode_inside_range(model, rig, engine, quant, prompt, output, measured, source):
    s = estimate(model, rig, engine=engine, quant=quant, prompt_tokens=prompt, output_tokens=output).speed
    low, high = s.decode_tokens_per_s_range
    assert low <= measured <= high, f"{source}: {measured} outside {low:.1f}–{high:.1f}"


def test_max_throughput_on_unseen_gpus_vllm():
    """Issue 13's target for vLLM: its offline-maximum rows (8x MI300X, AMD's published tables)
    predicted by a fit that never saw the GPU."""
    groups = {(g.engine, g.test, g.scope): g for g in serving_accuracy()}
    g = groups[("vllm", "max throughput", "leave-one-GPU-out")]
    assert g.rows >= 40
    assert g.mape <= TARGET_MAPE
    assert g.coverage >= TARGET_COVERAGE


def test_offline_rows_use_max_num_seqs_as_launched_and_batch_latency_as_throughput():
    from rigplan.calibration import serving_data

    rows = [r for r in serving_data.rows() if r.source_key == "amd-rocm-performance-results" and r.concurrency == "max"]
    assert len(rows) == 40 and all(r.max_num_seqs in (500, 1500, 2000, 3200) for r in rows)
    batch = [r for r in serving_data.rows() if r.source_key == "rocm-blogs-llm-inference-mi300x" and r.concurrency == 1]
    one = next(r for r in batch if r.model == "llama-3.1-70b" and r.prompt_tokens == 128)
    assert one.metric == serving_data.THROUGHPUT and one.measured == pytest.approx(2048 / 19.089, rel=1e-3)


def test_legacy_mla_builds_stay_out_of_the_fit():
    from rigplan.calibration import serving_data
    from rigplan.calibration.serving_csv import legacy_mla_build

    sources = {r.source_key for r in serving_data.rows()}
    assert "sgl-project/sglang#2643" not in sources
    assert "dzhsurf-deepseek-v3-awq-8xh100" not in sources
    assert "tenstorrent/tt-inference-server#356" in sources  # mid-2025 build: fitted
    row = {"engine": "vllm", "date": "2025-03"}
    assert legacy_mla_build(row, is_mla=True)
    assert not legacy_mla_build(row, is_mla=False)  # dense models: not judged by date
    assert not legacy_mla_build({"engine": "vllm", "date": "2025"}, is_mla=True)  # month unknown
    assert not legacy_mla_build({"engine": "tensorrt-llm", "date": "2025-03"}, is_mla=True)


def test_tensor_parallel_over_two_nodes_pays_the_network_all_reduce():
    one_node = estimate("deepseek-v3", "16x h100-sxm", engine="sglang", quant="fp8", tensor_parallel=16).speed
    two_nodes = estimate("deepseek-v3", "2 nodes x 8x h100-sxm", engine="sglang", quant="fp8", tensor_parallel=16)
    assert two_nodes.speed.decode_tokens_per_s < 0.95 * one_node.decode_tokens_per_s


def test_rows_on_several_nodes_are_checked_not_fitted():
    from rigplan.calibration import serving_data
    from rigplan.calibration.serving_fit import MAX_FIT_NODES

    several = [r for r in serving_data.rows() if r.nodes > 1]
    assert several and all(r.rig.startswith("2 nodes x 8x ") for r in several)
    fitted = {row["ref"] for p in load_serving_profiles().values() for row in serving_rows(p.engines[0])}
    assert MAX_FIT_NODES == 1 and not fitted & {r.ref for r in several}


def test_a_range_is_widened_until_each_tests_held_out_rows_keep_the_promise():
    from rigplan.calibration.serving_fit import _spread

    pooled = [0.01 * i for i in range(-20, 21)]  # 41 rows, quantiles near ±0.16
    small_test = [0.25, 0.26, 0.27, 0.0, 0.01, 0.02]  # a test whose held-out rows sit higher
    plain = _spread(pooled)
    assert sum(plain.low <= x <= plain.high for x in small_test) < 0.8 * len(small_test)
    widened = _spread(pooled, [pooled, small_test])
    assert sum(widened.low <= x <= widened.high for x in small_test) >= 0.8 * len(small_test)
    assert widened.high / plain.high == pytest.approx(widened.low / plain.low)  # one factor both sides
    assert widened.high / plain.high < 2.0  # as little as needed
    tiny = _spread(pooled, [[5.0, 5.0]])  # fewer than 5 rows: no promise to keep
    assert (tiny.low, tiny.high) == (plain.low, plain.high)


@pytest.mark.parametrize(
    ("batch", "measured"),
    # mushfiqrahman.dev, Mistral-7B-Instruct-v0.3 on one RTX 4090 under vLLM, 256 in / 128 out,
    # output tok/s at max concurrency 4-48: scored before it was fitted, 11.7 % off, 5 of 5 inside
    [(4, 210.0), (8, 377.0), (16, 644.0), (32, 975.0), (48, 1190.0)],
)
def test_gddr_throughput_at_a_concurrency_inside_range(batch, measured):
    """The first vLLM rows on a GDDR GPU (RTX 4090): output throughput within 25 % and inside the range."""
    s = estimate(
        "mistral-7b-v0.3", "rtx-4090", engine="vllm", quant="bf16", prompt_tokens=256, output_tokens=128, batch=batch
    ).speed
    low, high = s.output_throughput_tokens_per_s_range
    assert abs(s.output_throughput_tokens_per_s / measured - 1) <= 0.25
    assert low <= measured <= high


@pytest.mark.parametrize(
    ("prompt", "output", "requests", "measured"),
    # shaamil101-etched/trtllm-benchmarks results/result_<in>_<out>_<n>.txt @aeec9f29: Llama-3.1-70B
    # FP8 (FP8 KV cache) on 8x H100 at TP 8, TensorRT-LLM 0.16.0 trtllm-bench, offline output tok/s
    # of n identical requests.  Scored before it was fitted: all 63 rows 17.2 % off, 58 of 63
    # inside, long outputs ~0.8 of the steady estimate — the run's last wave, not the model's step.
    [
        (128, 128, 30000, 14389.8),
        (128, 1024, 7500, 19787.6),
        (128, 8192, 750, 7944.3),
        (1024, 128, 7500, 3575.4),
        (1024, 1024, 3000, 10893.9),
        (1024, 8192, 400, 6342.7),
        (8192, 128, 750, 477.0),
        (8192, 1024, 400, 2379.9),
        (8192, 8192, 150, 3565.5),
    ],
)
def test_trtllm_offline_max_on_eight_h100_inside_range(prompt, output, requests, measured):
    """A second TensorRT-LLM source beside NVIDIA's own: the steady estimate at ``batch="max"``,
    run as the benchmark did (``requests`` in waves of that batch), within 25 % and inside the
    range scaled the same way."""
    from rigplan.speed.batch import finite_run_throughput

    def at(batch: int | str):
        return estimate(
            "llama-3.1-70b",
            "8x h100-sxm",
            engine="tensorrt-llm",
            quant="fp8",
            kv_dtype="fp8",
            prompt_tokens=prompt,
            output_tokens=output,
            batch=batch,
        ).speed

    steady = at("max")
    run = finite_run_throughput(lambda b: at(b).output_throughput_tokens_per_s, steady.batch, requests)
    share = run / steady.output_throughput_tokens_per_s
    low, high = (share * v for v in steady.output_throughput_tokens_per_s_range)
    assert abs(run / measured - 1) <= 0.25
    assert low <= measured <= high


def test_trtllm_long_output_rows_priced_as_finite_runs():
    """Issue 13's long-output bias: trtllm-benchmarks' offline rows with 2,048+ output tokens read
    ~20 % high (measured / predicted 0.70-0.86) while the prediction was a steady state.  Priced
    as the benchmark ran them — N identical requests in waves of the KV pool's no-evict batch
    (``batch.finite_run_throughput``, N from the row's num_prompts) — the bias is gone to within
    the pool's own error (the engine printed 2,730,752 KV tokens where the model has 3,115,296)."""
    import math
    import statistics

    from rigplan.calibration import serving_data

    profile = load_serving_profiles()["tensorrt-llm"]
    rows = [
        r
        for r in serving_data.rows()
        if r.source_key == "shaamil101-etched/trtllm-benchmarks" and r.output_tokens >= 2048
    ]
    assert len(rows) >= 25 and all(r.num_prompts for r in rows)
    # results/result_1024_4096_800.txt: "Number of requests: 800"
    assert {r.num_prompts for r in rows if (r.prompt_tokens, r.output_tokens) == (1024, 4096)} == {800}
    logs = [math.log(r.measured / serving_data.predict(r, profile)) for r in rows]
    assert 0.85 <= math.exp(statistics.median(logs)) <= 1.1
    assert statistics.mean(abs(math.exp(-v) - 1) for v in logs) <= 0.16
