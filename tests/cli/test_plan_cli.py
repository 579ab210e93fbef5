"""``rigplan plan`` and ``rigplan power`` on real output: tables, JSON, exit codes, one-line errors."""

from __future__ import annotations

import json
import re
import sys

import pytest

from cli_runner import run
from planner_fixtures import toy_speed


@pytest.fixture(autouse=True)
def toy_speed_model(monkeypatch):

    monkeypatch.setattr(sys.modules["rigplan.core"], "estimate_speed", toy_speed)


def test_plan_json_is_the_api_dict(capsys):
    code, out, _ = run(capsys, "plan", "llama-2-70b", "--quant", "4bit", "--engine", "llama.cpp", "--json")
    d = json.loads(out)
    assert code == 0 and d["model"] == "llama-2-70b" and len(d["recommendations"]) == 5
    rec = d["recommendations"][0]
    assert {"rig", "gpus", "quant", "engine", "cost_usd", "estimate", "power", "platform", "why", "avoid_if"} <= set(
        rec
    )
    assert rec["estimate"]["fits"] is True and rec["power"]["psu_watts"]


def test_plan_table_shows_rigs_psu_and_explanations(capsys):
    code, out, _ = run(
        capsys, "plan", "llama-2-70b", "--quant", "4bit", "--budget", "4000", "--circuit", "120v15a", "--top", "10"
    )
    assert code == 0
    assert "2x rtx-3090" in out and "PSU" in out and "120v15a" in out
    assert "why: Cheapest" in out and "avoid if" in out and "cost: " in out


def _decode(out: str) -> str:
    """The first why line's decode speed and range, as the table prints a speed ("46.7 tok/s (28–53.9)")."""
    value, rng = re.search(r"why: Decodes ~(\S+ tok/s) per user (\([^)]*\))", out).groups()
    return f"{value} {rng}"


def _table_row(out: str, rank: int | str) -> str:
    """The main table's row of pick ``rank`` ("#": its header)."""
    return next(line for line in out.splitlines() if line.startswith(f"{rank}  "))


def test_one_user_table_shows_decode_tok_s(capsys):
    code, out, _ = run(capsys, "plan", "llama-2-70b", "--quant", "4bit", "--top", "1")
    decode = _decode(out)
    header = _table_row(out, "#")
    assert code == 0 and "decode tok/s" in header and "tok/s per user" not in header
    assert decode in _table_row(out, 1)


def test_several_users_table_shows_the_per_user_speed_the_why_line_streams(capsys, monkeypatch):
    import rigplan.speed

    # The real speed model: the toy one prefills nothing, so its per-user speed is its decode.
    monkeypatch.setattr(sys.modules["rigplan.core"], "estimate_speed", rigplan.speed.estimate_speed)
    code, out, _ = run(
        capsys, "plan", "llama-3.3-70b", "--users", "32", "--min-tok-s", "20", "--budget", "60000", "--top", "1"
    )
    streams = re.search(r"each user streams ~(\S+ tok/s \([^)]*\))", out).group(1)
    decode = _decode(out)
    row = _table_row(out, 1)
    header = _table_row(out, "#")
    assert code == 0 and "tok/s per user" in header and "decode tok/s" not in header
    assert streams in row and decode not in row


def test_plan_every_flag(capsys):
    code, out, _ = run(
        capsys,
        "plan",
        "llama-3-8b",
        "--quant",
        "any",
        "--context",
        "8192",
        "--users",
        "2",
        "--min-tokens-per-s",
        "5",
        "--budget",
        "6000",
        "--max-watts",
        "1500",
        "--circuit",
        "230v16a",
        "--max-gpus",
        "2",
        "--class",
        "consumer",
        "--platform",
        "desktop",
        "--have",
        "rtx-3090",
        "--engine",
        "llama.cpp",
        "--objective",
        "value",
        "--top",
        "3",
        "--price",
        "rtx-4090=1500",
        "--kwh-price",
        "0.3",
        "--json",
    )
    d = json.loads(out)
    assert code == 0 and 0 < len(d["recommendations"]) <= 3
    c = d["constraints"]
    assert (
        c["users"] == 2 and c["context"] == 8192 and c["have"] == ["rtx-3090"] and c["prices"] == {"rtx-4090": 1500.0}
    )
    for r in d["recommendations"]:
        assert r["gpus"][0] == "rtx-3090" and r["engine"] == "llama.cpp" and len(r["gpus"]) <= 2
        assert r["energy_usd_per_million_tokens"] is not None


def test_plan_nvlink_flag(capsys):
    code, out, _ = run(capsys, "plan", "llama-2-70b", "--quant", "4bit", "--nvlink", "--class", "consumer", "--json")
    assert code == 0
    assert all("NVLink" in r["platform"]["nvlink"] for r in json.loads(out)["recommendations"])


def test_nothing_qualifies_exits_1_and_says_why(capsys):
    code, out, _ = run(capsys, "plan", "llama-2-70b", "--quant", "4bit", "--budget", "500")
    assert code == 1
    assert "No rig meets every constraint" in out and "budget" in out and "nearest miss:" in out


def test_nothing_qualifies_json(capsys):
    code, out, _ = run(capsys, "plan", "llama-2-70b", "--quant", "4bit", "--budget", "500", "--json")
    d = json.loads(out)
    assert code == 1 and d["recommendations"] == [] and d["excluded"]["budget"] > 0 and d["nearest_miss"]["failed"]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["plan", "llama-2-70b", "--price", "rtx-3090"], "GPU=USD"),
        (["plan", "llama-2-70b", "--circuit", "110v"], "circuit"),
        (["plan", "llama-2-70b", "--objective", "best"], "objective"),
        (["plan", "llama-2-7OB"], "unknown model"),
        (["plan", "llama-2-70b", "--have", "rtx-4900"], "rtx-4090"),
        (["power", "2x rtx-4900"], "rtx-4090"),
        (["power", "rtx-4090", "--power-limit", "fast"], "power_limit"),
        (["power", "rtx-4090", "--platform", "laptop"], "platform"),
        (["power", "8x rtx-4090", "--platform", "am5-desktop"], "cannot take"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, args, match):
    code, _, err = run(capsys, *args)
    assert code == 2 and match in err and "Traceback" not in err and err.count("\n") == 1


def test_power_json(capsys):
    code, out, _ = run(capsys, "power", "rtx-4090", "--json")
    d = json.loads(out)
    assert code == 0 and d["power"]["psu_watts"] == 850 and d["power"]["connectors"] == {"12v-2x6": 1}
    assert d["power_limit"]["fraction"] == 0.7


def test_power_table_with_circuit_limit_and_electricity(capsys):
    code, out, _ = run(
        capsys,
        "power",
        "2x rtx-3090",
        "--circuit",
        "120v15a",
        "--kwh-price",
        "0.30",
        "--power-limit",
        "280W",
        "--model",
        "llama-2-70b",
    )
    assert code == 0
    assert "PSU (ATX 3.x)" in out and "circuit 120v15a" in out and "←" in out
    assert "80% = 280 W per GPU" in out and "per million tokens" in out


def test_power_exits_1_when_the_circuit_cannot_carry_it(capsys):
    code, out, _ = run(capsys, "power", "8x rtx-4090", "--circuit", "120v15a", "--json")
    d = json.loads(out)
    assert code == 1 and d["power"]["circuits"]["120v15a"]["fits"] is False


def test_power_on_a_named_platform(capsys):
    code, out, _ = run(capsys, "power", "4x rtx-a6000", "--platform", "wrx90-hedt", "--json")
    d = json.loads(out)
    assert code == 0 and d["platform"]["id"] == "wrx90-hedt" and d["power"]["host"]["cpu_watts"] == 350


@pytest.mark.parametrize("command", ["plan", "power"])
def test_help_ends_with_an_example(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and "Example: rigplan " + command in out


def test_plan_never_ranks_an_fp16_bound_engine_on_pascal(capsys):
    # Issue 12 done-when: `rigplan plan llama-3-70b --budget 2000` proposes no ExLlamaV2 (or any
    # FP16-bound engine) on a Pascal card.
    code, out, _ = run(capsys, "plan", "llama-3-70b", "--budget", "2000", "--json")
    assert code in (0, 1)
    recs = json.loads(out)["recommendations"]
    for r in recs:
        if "tesla-p40" in r["rig"]:
            assert r["engine"] in ("llama.cpp", "ollama"), r


def test_estimate_explains_why_exllamav2_cannot_run_on_a_p40(capsys):
    code, _out, err = run(capsys, "estimate", "llama-3-8b", "--rig", "tesla-p40", "--engine", "exllamav2")
    assert code == 2
    assert "FP16" in err and "1/64" in err and "llama.cpp" in err
    assert "Traceback" not in err


LLAMA_BENCH_4090 = """\
| model                          |       size |     params | backend    | ngl |          test |                  t/s |
| ------------------------------ | ---------: | ---------: | ---------- | --: | ------------: | -------------------: |
| llama 8B Q4_K - Medium         |   4.58 GiB |     8.03 B | CUDA       |  99 |         pp512 |      3000.00 ± 14.96 |
| llama 8B Q4_K - Medium         |   4.58 GiB |     8.03 B | CUDA       |  99 |         tg128 |        60.00 ± 0.66 |

build: 4426e298 (2824)
"""
PLAN_ON_A_4090 = ("plan", "llama-3-8b", "--have", "rtx-4090", "--engine", "llama.cpp", "--top", "2")


def test_no_user_calibration_prints_the_same_plan_with_or_without_a_stored_calibration(capsys, monkeypatch, tmp_path):
    """--no-user-calibration: the config dir's calibration store changes nothing (real speed model)."""
    import rigplan.speed

    monkeypatch.setattr(sys.modules["rigplan.core"], "estimate_speed", rigplan.speed.estimate_speed)
    code, empty, _ = run(capsys, *PLAN_ON_A_4090, "--no-user-calibration")
    assert code == 0 and "rtx-4090" in empty
    bench = tmp_path / "bench.md"
    bench.write_text(LLAMA_BENCH_4090, encoding="utf-8")
    assert run(capsys, "calibrate", str(bench), "--gpu", "rtx-4090")[0] == 0
    code, calibrated, _ = run(capsys, *PLAN_ON_A_4090)
    assert code == 0 and calibrated != empty, "the stored calibration should change the plan's speeds"
    code, ignored, _ = run(capsys, *PLAN_ON_A_4090, "--no-user-calibration")
    assert code == 0 and ignored == empty


def test_plan_table_adds_the_best_value_rig_the_top_rows_leave_out(capsys):
    code, out, _ = run(capsys, "plan", "llama-2-70b", "--quant", "4bit", "--budget", "4000", "--top", "1")
    assert code == 0
    assert "Also worth a look (# is the place by cheapest):" in out
    assert "(best value" in out and "why: Best value of the configurations estimated" in out
