"""Integrity of the serving calibration data (measurements/serving.csv, serving_memory.csv).

Every row is one published figure with its source; these tests check the files can be trusted as
data: the columns, that every row names its source, that engines, metrics and statistics come from
the documented vocabularies, and that every number is a positive measurement.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import rigplan.calibration
from rigplan.catalog import load_catalog

MEASUREMENTS = Path(rigplan.calibration.__file__).parent / "measurements"
SERVING_FILE = MEASUREMENTS / "serving.csv"
MEMORY_FILE = MEASUREMENTS / "serving_memory.csv"

SERVING_COLUMNS = [
    "source", "source_id", "date", "engine", "engine_version", "gpu", "n_gpus", "tp", "pp", "ep",
    "model", "quant", "kv_dtype", "input_len", "output_len", "concurrency", "num_prompts", "metric",
    "value", "stat", "flags", "notes",
]  # fmt: skip
MEMORY_COLUMNS = [
    "source", "source_id", "date", "engine", "engine_version", "gpu", "tp", "model", "quant",
    "gpu_memory_utilization", "max_model_len", "weights_gib", "kv_cache_gib", "kv_tokens",
    "max_concurrency", "cuda_graph_gib", "activation_peak_gib", "non_torch_gib", "notes",
]  # fmt: skip
ENGINES = {"vllm", "sglang", "tensorrt-llm"}
METRICS = {
    "output_tok_s",
    "total_tok_s",
    "per_user_tok_s",
    "tpot_ms",
    "itl_ms",
    "ttft_ms",
    "request_s",
    "e2e_latency_ms",
}
STATS = {"mean", "median", "p99"}
QUANTS = {"bf16", "f16", "f32", "fp8", "int8", "int4-awq", "int4-gptq", "fp4", "mxfp4"}
# GPU ids named in design.md §3 for the second round that a catalogue branch may add later, and
# GH200 (no rigplan id). Any other GPU without an id must say it is written "as printed".
EXTRA_GPU_IDS = {"gb200", "rtx-pro-6000-server", "b300", "dgx-spark", "gh200"}
# The brief's targets for this data set.
MIN_SERVING_ROWS = 250
MIN_SERVING_SOURCES = 15
MIN_MEMORY_ROWS = 20


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _positive_int(text: str) -> bool:
    return text.isdigit() and int(text) > 0


@pytest.fixture(scope="module")
def serving() -> list[dict[str, str]]:
    header, rows = _read(SERVING_FILE)
    assert header == SERVING_COLUMNS
    return rows


@pytest.fixture(scope="module")
def memory() -> list[dict[str, str]]:
    header, rows = _read(MEMORY_FILE)
    assert header == MEMORY_COLUMNS
    return rows


def test_serving_meets_the_size_targets(serving):
    assert len(serving) >= MIN_SERVING_ROWS
    assert len({r["source_id"] for r in serving}) >= MIN_SERVING_SOURCES
    assert {r["engine"] for r in serving} == ENGINES


def test_every_serving_row_names_its_source_date_and_version(serving):
    for r in serving:
        assert r["source"].strip() and r["source_id"].strip(), r
        assert r["date"][:4].isdigit() and 2023 <= int(r["date"][:4]) <= 2026, r
        assert r["engine_version"].strip(), r


def test_serving_vocabularies(serving):
    for r in serving:
        assert r["engine"] in ENGINES, r["engine"]
        assert r["metric"] in METRICS, r["metric"]
        assert r["stat"] in STATS, r["stat"]
        assert r["quant"] in QUANTS, r["quant"]


def test_serving_values_are_positive_numbers(serving):
    for r in serving:
        assert float(r["value"]) > 0, r


def test_serving_parallelism_fits_the_gpus(serving):
    for r in serving:
        n, tp = int(r["n_gpus"]), int(r["tp"])
        pp = int(r["pp"] or 1)
        assert n >= 1 and tp >= 1 and pp >= 1, r
        assert tp * pp <= n, r
        if r["ep"]:
            assert 1 <= int(r["ep"]) <= n, r


def test_serving_workload_fields(serving):
    for r in serving:
        assert r["concurrency"] in ("", "max") or _positive_int(r["concurrency"]), r
        for key in ("input_len", "output_len", "num_prompts"):
            assert r[key] == "" or _positive_int(r[key]), (key, r)


def test_serving_gpus_are_catalogue_ids_or_marked(serving):
    ids = set(load_catalog().gpus) | EXTRA_GPU_IDS
    for r in serving:
        assert r["gpu"] in ids or "as printed" in r["gpu"], r["gpu"]


def test_speculative_decoding_rows_are_marked(serving):
    for r in serving:
        text = (r["flags"] + " " + r["notes"]).lower()
        if "speculative" in r["flags"].lower() or "eagle" in r["flags"].lower() or "mtp" in r["flags"].lower():
            assert "speculative" in text and "marked" in text, r


def test_derived_rows_say_so(serving):
    # A row whose value was computed (e.g. per-GPU x GPUs) carries the word DERIVED in its notes.
    derived = [r for r in serving if "DERIVED" in r["notes"]]
    for r in derived:
        assert "printed" in r["notes"], r


def test_memory_meets_the_size_target_and_names_sources(memory):
    assert len(memory) >= MIN_MEMORY_ROWS
    for r in memory:
        assert r["source"].strip() and r["source_id"].strip() and r["date"].strip(), r
        assert r["engine"] in ENGINES, r
        assert _positive_int(r["tp"]), r


def test_memory_numbers_are_non_negative(memory):
    numeric = ("gpu_memory_utilization", "max_model_len", "weights_gib", "kv_cache_gib", "kv_tokens",
               "max_concurrency", "cuda_graph_gib", "activation_peak_gib", "non_torch_gib")  # fmt: skip
    for r in memory:
        for key in numeric:
            if r[key]:
                assert float(r[key]) >= 0, (key, r)
        assert r["kv_tokens"] == "" or r["kv_tokens"].isdigit(), r
        assert r["gpu_memory_utilization"] == "" or 0 < float(r["gpu_memory_utilization"]) <= 1, r


def test_memory_rows_are_self_consistent(memory):
    # vLLM prints "Maximum concurrency for L tokens per request: Nx" = KV tokens / L.
    for r in memory:
        if r["kv_tokens"] and r["max_model_len"] and r["max_concurrency"] and r["engine"] == "vllm":
            ratio = int(r["kv_tokens"]) / int(r["max_model_len"])
            # Sliding-window / hybrid models report more concurrency than the plain ratio.
            assert float(r["max_concurrency"]) >= 0.95 * ratio, r
