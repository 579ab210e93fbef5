"""What would make a training configuration fit: each suggested change, applied, fits; one per
kind, fastest first, job-changing ones last; nothing for a fitting run; the CLI prints it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rigplan import estimate_training, training_fit_advice
from rigplan.cli import app
from rigplan.training.advice import CHANGES, _adds
from rigplan.training.settings import TrainingSettings

CHANGE_OF = {words: change for _, words, change in CHANGES}
KIND_OF = {words: kind for kind, words, _ in CHANGES}

CASES = [
    ("llama-3-8b", "8x h100-sxm", {}),
    ("llama-3-8b", "rtx-4090", {"method": "lora"}),
    ("llama-3-8b", "rtx-4090", {}),
    ("llama-3-70b", "8x h100-sxm", {}),
    ("llama-3-8b", "2x rtx-4090", {"zero_stage": "fsdp-full"}),
    ("mistral-7b", "4x rtx-3090", {"seq_len": 8192}),
]


@pytest.mark.parametrize(("model", "rig", "kw"), CASES)
def test_each_suggested_change_fits_when_applied(model, rig, kw):
    e = estimate_training(model, rig, **kw)
    assert not e.fits
    advice = training_fit_advice(e)
    assert advice, f"{model} on {rig} {kw}: no change suggested"
    kinds = [KIND_OF[a.change] for a in advice]
    assert len(kinds) == len(set(kinds))  # one per kind of change
    assert kinds == sorted(kinds, key=lambda k: k == "method")  # LoRA / QLoRA change the job: last
    speeds = []
    for a in advice:
        fixed = estimate_training(model, rig, **(kw | dict(CHANGE_OF[a.change])))
        assert fixed.fits, a.change
        peak = max(s.total_bytes / s.usable_bytes for s in fixed.memory.stages)
        assert a.fullest == pytest.approx(peak)
        if KIND_OF[a.change] != "method":
            speeds.append(fixed.speed.tokens_per_s)
    assert speeds == sorted(speeds, reverse=True)  # fastest first


def test_a_run_that_fits_gets_no_advice():
    e = estimate_training("llama-3-8b", "rtx-4090", method="qlora")
    assert e.fits and training_fit_advice(e) == []


def test_zero_stages_are_not_suggested_without_ranks_to_shard_over():
    e = estimate_training("llama-3-8b", "rtx-4090", method="lora")
    assert not any("--zero-stage" in a.change for a in training_fit_advice(e))


def test_nothing_enough_is_said_so():
    e = estimate_training("llama-3-70b", "rtx-4090")
    assert training_fit_advice(e) == []
    r = CliRunner().invoke(app, ["train", "llama-3-70b", "--rig", "rtx-4090"])
    assert r.exit_code == 1
    assert "no change tried is enough" in r.output and "rigplan plan llama-3-70b --task full" in r.output


def test_the_cli_prints_what_would_make_it_fit():
    runner = CliRunner()
    r = runner.invoke(app, ["train", "llama-3-8b", "--rig", "8x h100-sxm", "--tokens", "1e10"])
    assert r.exit_code == 1, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("would fit with: "))
    assert line.startswith("would fit with: --zero-stage 1 (fullest GPU ")
    d = json.loads(runner.invoke(app, ["train", "llama-3-8b", "--rig", "8x h100-sxm", "--json"]).output)
    assert not d["fits"] and d["would_fit_with"][0].startswith("--zero-stage 1")


@pytest.mark.parametrize(
    ("now", "change", "more"),
    [
        ({"zero_stage": "zero-2"}, {"zero_stage": 2}, False),
        ({"zero_stage": "zero-2"}, {"zero_stage": 3}, True),
        ({"zero_stage": "fsdp-full"}, {"zero_stage": 3}, False),
        ({"zero_stage": "fsdp-grad-op"}, {"zero_stage": 3}, True),
        ({"activation_checkpointing": "full"}, {"activation_checkpointing": True}, False),
        ({"activation_checkpointing": "none"}, {"activation_checkpointing": "selective"}, True),
        ({"activation_checkpointing": "selective"}, {"activation_checkpointing": "selective"}, False),
        ({"method": "pretrain"}, {"method": "lora"}, False),
        ({"method": "lora"}, {"method": "qlora"}, True),
        ({"offload": "cpu"}, {"offload": "cpu"}, False),
    ],
)
def test_a_change_counts_only_when_it_asks_for_more(now, change, more):
    assert _adds(TrainingSettings(**now), change) is more
