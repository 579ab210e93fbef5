"""``rigplan train`` through the CLI runner, and the plan helper the ``plan`` command calls."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rigplan.cli import app
from rigplan.cli.train_cmds import parse_duration, parse_tokens, training_plan_output
from rigplan.errors import InvalidValueError

runner = CliRunner()


def test_train_json():
    r = runner.invoke(
        app,
        [
            "train",
            "llama-3-8b",
            "--rig",
            "8x h100-sxm",
            "--zero-stage",
            "3",
            "--checkpointing",
            "full",
            "--tokens",
            "1B",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["fits"] and d["zero_stage"] == 3 and d["tokens"] == 1_000_000_000


def test_train_table_and_exit_status():
    r = runner.invoke(app, ["train", "llama-3-70b", "--rig", "rtx-4090", "--method", "qlora"])
    assert r.exit_code == 1
    assert "DOES NOT FIT" in r.output and "per GPU" in r.output
    ok = runner.invoke(
        app, ["train", "llama-3-8b", "--rig", "rtx-4090", "--method", "qlora", "--checkpointing", "full"]
    )
    assert ok.exit_code == 0, ok.output
    assert "tok/s" in ok.output and "fits" in ok.output


def test_train_help_has_example():
    r = runner.invoke(app, ["train", "--help"])
    assert r.exit_code == 0
    assert "Example: rigplan train" in r.output


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("3d", 259200), ("90m", 5400), ("3600s", 3600), ("1.5 hours", 5400), ("2w", 1209600)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "tokens"), [("1e9", 1e9), ("500M", 5e8), ("2B", 2e9), ("1.5T", 1.5e12)])
def test_parse_tokens(text, tokens):
    assert parse_tokens(text) == tokens


@pytest.mark.parametrize("bad", ["soon", "-3h", "0", "24"])  # "24": a deadline needs a unit
def test_parse_duration_bad(bad):
    with pytest.raises(InvalidValueError, match="deadline"):
        parse_duration(bad)


def test_plan_helper_prints(capsys):
    training_plan_output("llama-3-8b", task="qlora", tokens="1e8", deadline="24h", limit=3)
    out = capsys.readouterr().out
    assert out.startswith("llama-3-8b · qlora · 1e+08 tokens")
    training_plan_output("llama-3-8b", task="lora", limit=2, json=True)
    assert json.loads(capsys.readouterr().out)["task"] == "lora"


def test_train_prints_buy_rent_electricity_with_sources():
    """The issue's done-when command."""
    r = runner.invoke(app, ["train", "llama-3-8b", "--rig", "8x h100-sxm", "--method", "full", "--tokens", "1e10"])
    assert r.exit_code == 1, r.output  # ZeRO-0 does not fit; the cost lines print anyway
    out = " ".join(r.output.split())
    assert "buy: $199,000 — DGX H100" in out
    assert "rent on-demand: $4.76/GPU-hour (RunPod, 2026-03-10)" in out
    assert "rent spot: $2.69/GPU-hour" in out
    assert "electricity:" in out and "kWh" in out and "EIA" in out
    assert "break-even:" in out and "source: https://" in out
    assert "framework fsdp (default)" in out


def test_user_config_rental_and_electricity(tmp_path):
    from rigplan.cli.train_cmds import load_training_config
    from rigplan.errors import DataFileError

    cfg = tmp_path / "config.toml"
    cfg.write_text("[rental]\nrtx-4090 = 0.5\n[electricity]\nusd_per_kwh = 0.3\n", encoding="utf-8")
    conf = load_training_config(cfg)
    assert conf.rental == {"rtx-4090": 0.5} and conf.usd_per_kwh == 0.3
    cfg.write_text("[rental]\nrtx-9999 = 0.5\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="rental"):
        load_training_config(cfg)


def test_train_framework_and_link_flags():
    r = runner.invoke(
        app,
        [
            "train",
            "llama-3-70b",
            "--rig",
            "8x h100-sxm",
            "--tensor-parallel",
            "8",
            "--framework",
            "nemo",
            "--link",
            "pcie5",
            "--zero-stage",
            "1",
            "--json",
        ],
    )
    d = json.loads(r.output)
    assert d["speed"]["framework"] == "megatron" and d["speed"]["framework_default"] is False
    assert "PCIe 5.0" in d["interconnect"]


def test_unknown_framework_is_a_one_line_error(capsys):
    from rigplan.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "llama-3-8b", "--rig", "rtx-4090", "--framework", "jax"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "framework" in err and "Traceback" not in err


def test_accuracy_prints_training_groups_and_hold_outs():
    """``rigplan accuracy``: training accuracy per framework, dense / MoE and GPU family, and with a
    whole GPU type or framework held out, each with its MAPE and how often the range holds."""
    r = runner.invoke(app, ["accuracy"])
    assert r.exit_code == 0, r.output
    block = r.output.split("training by framework", 1)[1].split("serving", 1)[0]
    for key in ("framework megatron", "framework fsdp", "dense", "MoE", "GPU hopper", "GPU blackwell"):
        assert f"  {key} " in block, key
    for key in ("one GPU held out: dense", "one framework held out: MoE"):
        assert key in block
    rows = [line for line in block.splitlines() if "MAPE" in line]
    assert rows and all("range holds" in line for line in rows)
    # the columns line up: every "n=" starts in the same column
    assert len({line.index(" n=") for line in rows}) == 1
