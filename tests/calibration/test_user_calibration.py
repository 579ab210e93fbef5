"""``rigplan calibrate``: parsing benchmark files, the stored correction, safe writes."""

from __future__ import annotations

import json
import threading

import pytest

from rigplan.calibration import user, user_store
from rigplan.errors import DataFileError
from rigplan.estimate import estimate


def bench_record(n_prompt: int, n_gen: int, avg_ts: float, **extra) -> dict:
    """One llama-bench -o json record (fields as llama-bench writes them)."""
    rec = {
        "build_commit": "4426e298",
        "build_number": 2824,
        "cuda": True,
        "gpu_info": "NVIDIA GeForce RTX 4090",
        "model_filename": "models/Meta-Llama-3-8B.Q4_K_M.gguf",
        "model_type": "llama 8B Q4_K - Medium",
        "model_size": 4912898304,
        "model_n_params": 8030261248,
        "n_batch": 2048,
        "n_ubatch": 512,
        "type_k": "f16",
        "type_v": "f16",
        "n_gpu_layers": 99,
        "split_mode": "layer",
        "flash_attn": False,
        "n_prompt": n_prompt,
        "n_gen": n_gen,
        "avg_ts": avg_ts,
        "stddev_ts": 0.5,
    }
    rec.update(extra)
    return rec


MARKDOWN = """\
| model                          |       size |     params | backend    | ngl |          test |                  t/s |
| ------------------------------ | ---------: | ---------: | ---------- | --: | ------------: | -------------------: |
| llama 8B Q4_K - Medium         |   4.58 GiB |     8.03 B | CUDA       |  99 |         pp512 |      7139.00 ± 14.96 |
| llama 8B Q4_K - Medium         |   4.58 GiB |     8.03 B | CUDA       |  99 |         tg128 |        130.58 ± 0.66 |

build: 4426e298 (2824)
"""

VLLM_SERVE = {
    "date": "20261101-120000",
    "backend": "vllm",
    "model_id": "meta-llama/Meta-Llama-3-8B",
    "num_prompts": 50,
    "max_concurrency": 1,
    "completed": 50,
    "total_input_tokens": 51200,
    "total_output_tokens": 6400,
    "mean_ttft_ms": 40.0,
    "mean_tpot_ms": 7.5,
    "output_throughput": 120.0,
}


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_llama_bench_json(tmp_path):
    path = write(
        tmp_path, "b.json", [bench_record(512, 0, 7139.0), bench_record(0, 128, 130.58), bench_record(512, 128, 900.0)]
    )
    ms = user.parse_file(path)
    assert [(m.kind, m.prompt_tokens, m.output_tokens) for m in ms] == [("prefill", 512, 0), ("decode", 0, 128)]
    assert {m.model for m in ms} == {"llama-3-8b"} and {m.quant for m in ms} == {"q4_k_m"}
    assert {m.rig for m in ms} == {"rtx-4090"}


def test_llama_bench_jsonl_and_depth(tmp_path):
    lines = "\n".join(json.dumps(r) for r in (bench_record(0, 128, 120.0, n_depth=4096), bench_record(512, 0, 7000.0)))
    ms = user.parse_file(write(tmp_path, "b.jsonl", lines + "\n"))
    assert ms[0].kind == "decode" and ms[0].prompt_tokens == 4096


def test_llama_bench_markdown_needs_the_gpu(tmp_path):
    path = write(tmp_path, "b.md", MARKDOWN)
    with pytest.raises(DataFileError, match="does not name the GPUs; pass --gpu"):
        user.parse_file(path)
    ms = user.parse_file(path, gpu="rtx-4090")
    assert [(m.kind, m.tokens_per_s) for m in ms] == [("prefill", 7139.0), ("decode", 130.58)]
    assert ms[0].model == "llama-3-8b"


def test_vllm_bench_serve(tmp_path):
    path = write(tmp_path, "v.json", VLLM_SERVE)
    with pytest.raises(DataFileError, match="pass --gpu"):
        user.parse_file(path)
    ms = user.parse_file(path, gpu="h100-sxm")
    assert ms[0].engine == "vllm" and ms[0].tokens_per_s == pytest.approx(1000 / 7.5)
    assert ms[1].kind == "prefill" and ms[1].tokens_per_s == pytest.approx(1024 / 0.040)


@pytest.mark.parametrize(
    ("text", "quant"),
    [
        ("llama 8B Q4_K - Medium", "q4_k_m"),
        ("llama 70B Q4_K - Small", "q4_k_s"),
        ("llama 7B Q8_0", "q8_0"),
        ("llama 8B F16", "f16"),
        ("qwen2 7B Q5_K - Medium", "q5_k_m"),
        ("llama 8B IQ4_XS - 4.25 bpw", "iq4_xs"),
        ("llama 7B Q3_K - Large", "q3_k_l"),
        ("llama 8B BF16", "bf16"),
        ("gemma2 9B Q6_K", "q6_k"),
    ],
)
def test_quant_from_llama_bench_type(text, quant):
    assert user.quant_from_model_type(text) == quant


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("", "file: empty", id="empty"),
        pytest.param("{not json", "not JSON", id="bad-json"),
        pytest.param(
            [{"model_type": "llama 8B Q4_K - Medium", "n_prompt": 512, "n_gen": 0}],
            r"\[0\]\.avg_ts: missing",
            id="missing-field",
        ),
        pytest.param([bench_record(512, 0, -3.0)], r"\[0\]\.avg_ts: expected a positive number", id="negative"),
        pytest.param(
            [bench_record(512, 0, 100.0, model_type="llama 8B ???")],
            r"model_type: cannot tell the quant",
            id="unknown-quant",
        ),
        pytest.param(
            [bench_record(512, 0, 100.0, gpu_info="Voodoo 5 6000")], "unknown GPU 'Voodoo 5 6000'", id="unknown-gpu"
        ),
        pytest.param("| a | b |\n|---|---|\n| 1 | 2 |\n", "column 'model'", id="markdown-columns"),
        pytest.param([bench_record(512, 128, 10.0)], "no tg or pp results", id="only-pg"),
    ],
)
def test_bad_files_name_the_file_and_field(tmp_path, content, message):
    path = write(tmp_path, "bad.json", content)
    with pytest.raises(DataFileError, match=message) as exc:
        user.parse_file(path)
    assert str(path) in str(exc.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(DataFileError, match="cannot read"):
        user.parse_file(tmp_path / "missing.json")


def test_calibrate_round_trip_changes_later_estimates(tmp_path):
    base = estimate("llama-3-8b", "rtx-4090", quant="q4_k_m", prompt_tokens=0, output_tokens=128).speed
    assert not base.calibrated_on_user_results
    measured = 2 * base.decode_tokens_per_s
    path = write(tmp_path, "b.json", [bench_record(0, 128, measured)])
    (result,) = user.calibrate([path])
    assert result.engine == "llama.cpp" and result.gpus == ("rtx-4090",)
    assert result.decode_factor == pytest.approx(2.0, rel=1e-3) and result.prefill_factor is None
    assert user.store_path().exists()
    after = estimate("llama-3-8b", "rtx-4090", quant="q4_k_m", prompt_tokens=0, output_tokens=128).speed
    assert after.calibrated_on_user_results
    assert after.decode_tokens_per_s == pytest.approx(measured, rel=1e-3)
    assert "your results" in after.engine_profile
    lo, hi = after.decode_tokens_per_s_range
    assert lo <= after.decode_tokens_per_s <= hi
    # ollama runs llama.cpp: the same correction; other GPUs and engines keep the catalogue's.
    assert estimate("llama-3-8b", "rtx-4090", engine="ollama").speed.calibrated_on_user_results
    assert not estimate("llama-3-8b", "rtx-3090").speed.calibrated_on_user_results
    assert not estimate("llama-3-8b", "rtx-4090", use_user_calibration=False).speed.calibrated_on_user_results
    # The same file again adds no rows; --reset forgets everything.
    (again,) = user.calibrate([path])
    assert len(again.rows) == 1
    assert user.show()[0]["rows"] == 1
    assert user.reset() is True
    assert not estimate("llama-3-8b", "rtx-4090").speed.calibrated_on_user_results


def test_corrupt_store_is_a_clear_error():
    path = user.store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{ truncated", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"calibration\.json: json: unreadable .*--reset"):
        estimate("llama-3-8b", "rtx-4090")
    path.write_text(
        json.dumps(
            {
                "schema": 1,
                "entries": [
                    {"engine": "llama.cpp", "gpus": ["rtx-4090"], "decode_factor": "fast", "rows": [], "fitted_on": "x"}
                ],
            }
        )
    )
    with pytest.raises(DataFileError, match=r"entries\[0\]\.decode_factor"):
        estimate("llama-3-8b", "rtx-4090")


def test_a_crash_while_writing_leaves_the_old_store(tmp_path, monkeypatch):
    user.calibrate([write(tmp_path, "a.json", [bench_record(0, 128, 100.0)])])
    before = user.store_path().read_text(encoding="utf-8")

    def boom(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(user_store.json, "dump", boom)
    with pytest.raises(KeyboardInterrupt):
        user.calibrate([write(tmp_path, "b.json", [bench_record(0, 256, 90.0)])])
    assert user.store_path().read_text(encoding="utf-8") == before
    assert not list(user.store_path().parent.glob(".calibration-*.tmp"))


def test_concurrent_writers_keep_every_entry(tmp_path):
    gpus = ["rtx-4090", "rtx-3090", "rtx-a6000", "l40s"]
    files = [write(tmp_path, f"{g}.json", [bench_record(0, 128, 100.0, gpu_info=g)]) for g in gpus]
    errors: list[BaseException] = []

    def worker(path):
        try:
            user.calibrate([path])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stored = json.loads(user.store_path().read_text(encoding="utf-8"))
    assert sorted(e["gpus"][0] for e in stored["entries"]) == sorted(gpus)
