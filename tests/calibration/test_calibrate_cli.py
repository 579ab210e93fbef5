"""``rigplan calibrate`` and ``rigplan accuracy`` on the command line."""

from __future__ import annotations

import json

import pytest

from cli_runner import run

BENCH = [
    {
        "model_type": "llama 8B Q4_K - Medium",
        "model_n_params": 8030261248,
        "gpu_info": "NVIDIA GeForce RTX 3090",
        "n_prompt": 0,
        "n_gen": 128,
        "avg_ts": 200.0,
        "n_gpu_layers": 99,
        "split_mode": "layer",
    }
]


def test_calibrate_show_reset(capsys, tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(BENCH), encoding="utf-8")
    code, out, _ = run(capsys, "calibrate", str(path), "--json")
    assert code == 0
    (result,) = json.loads(out)["results"]
    assert result["gpus"] == ["rtx-3090"] and result["decode_factor"] > 1
    code, out, _ = run(capsys, "estimate", "llama-3-8b", "--rig", "rtx-3090", "--json")
    assert json.loads(out)["speed"]["calibrated_on_user_results"] is True
    code, out, _ = run(capsys, "estimate", "llama-3-8b", "--rig", "rtx-3090")
    assert "calibrated on your results" in out
    code, out, _ = run(capsys, "calibrate", "--show")
    assert code == 0 and "rtx-3090" in out and "llama.cpp" in out
    code, out, _ = run(capsys, "calibrate", "--reset", "--json")
    assert json.loads(out)["reset"] is True
    code, out, _ = run(capsys, "calibrate", "--show", "--json")
    assert json.loads(out)["entries"] == []


def test_calibrate_table_output(capsys, tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(BENCH), encoding="utf-8")
    code, out, _ = run(capsys, "calibrate", str(path))
    assert code == 0 and "correction: decode ×" in out and "measured" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["calibrate"], "give one or more benchmark files", id="no-files"),
        pytest.param(["calibrate", "nope.json"], "nope.json: file: cannot read", id="missing-file"),
        pytest.param(["calibrate", "--show", "x.json"], "take no files", id="show-with-files"),
    ],
)
def test_calibrate_errors_are_one_line(capsys, args, message):
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_accuracy_json(capsys):
    code, out, _ = run(capsys, "accuracy", "--json")
    assert code == 0
    d = json.loads(out)
    targeted = [g for g in d["groups"] if g["scope"] == "targeted"]
    assert {g["kind"] for g in targeted} == {"decode", "prefill"}
    assert all(g["meets_target"] for g in targeted)


def test_accuracy_table(capsys):
    code, out, _ = run(capsys, "accuracy")
    assert code == 0 and "leave-one-GPU-out" in out and "roofline" in out and "worst rows" in out


def test_help_ends_with_an_example(capsys):
    for command in ("calibrate", "accuracy"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0
        assert "Example: rigplan " + command in out
