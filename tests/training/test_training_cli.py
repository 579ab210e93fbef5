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
