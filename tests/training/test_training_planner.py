"""``plan_training``: what it ranks, how it filters, and how fast it is."""

from __future__ import annotations

import json

import pytest

from rigplan.errors import InvalidValueError
from rigplan.training import plan_training, render_training_plan
from rigplan.training.planner import CHINCHILLA_TOKENS_PER_PARAM, format_duration


def test_qlora_70b_plan():
    plan = plan_training("llama-3-70b", task="qlora")
    assert plan.options
    best = plan.options[0]
    assert best.buy_usd is not None
    assert [o.buy_usd for o in plan.options if o.buy_usd is not None] == sorted(
        o.buy_usd for o in plan.options if o.buy_usd is not None
    )
    for o in plan.options:
        assert o.memory.fits
        assert o.layout.tensor_parallel == 1 and o.layout.pipeline_parallel == 1  # DDP / FSDP-QLoRA only
    d = plan.to_dict()
    json.dumps(d)
    assert d["task"] == "qlora" and d["options"][0]["rig"] == best.rig.describe()


def test_full_fine_tune_layouts_obey_divisibility():
    plan = plan_training("llama-3-8b", task="full", objective="fastest", max_gpus=64, limit=20)
    for o in plan.options:
        lay, s = o.layout, o.setup
        assert lay.gpus == o.rig.gpu_count
        assert 32 % lay.tensor_parallel == 0 and 8 % lay.tensor_parallel == 0
        assert 32 % lay.pipeline_parallel == 0
        assert plan.global_batch % (s.micro_batch * lay.data_parallel) == 0
        assert o.rig.gpu_count <= 64
    times = [o.time_to_train_s for o in plan.options]
    assert times == sorted(times)


def test_deadline_and_budget_filter():
    plan = plan_training("llama-3-8b", task="full", tokens=1e9, deadline_s=24 * 3600, budget_usd=30000)
    assert plan.options
    for o in plan.options:
        assert o.time_to_train_s <= 24 * 3600
        assert o.buy_usd is not None and o.buy_usd <= 30000


def test_impossible_deadline_explains():
    plan = plan_training("llama-3-70b", task="full", tokens=1e12, deadline_s=60, max_gpus=8)
    assert not plan.options
    assert any("deadline" in n for n in plan.notes)
    assert "no rig fits" in render_training_plan(plan)


def test_pretrain_defaults_to_chinchilla_tokens():
    plan = plan_training("llama-3.2-1b", task="pretrain", gpu_class="datacenter", limit=3)
    from rigplan.training.shape import model_shape

    assert plan.tokens == CHINCHILLA_TOKENS_PER_PARAM * model_shape(plan.model).total_params


def test_gpu_filter_and_class():
    plan = plan_training("llama-3-8b", task="lora", gpus=["rtx 4090", "rtx-3090"])
    assert {o.rig.gpus[0].id for o in plan.options} <= {"rtx-4090", "rtx-3090"}
    plan = plan_training("llama-3-8b", task="lora", gpu_class="workstation")
    assert all(o.rig.gpus[0].gpu_class == "workstation" for o in plan.options)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"task": "rlhf"}, "method", id="task"),
        pytest.param({"objective": "prettiest"}, "objective", id="objective"),
        pytest.param({"deadline_s": -1}, "deadline_s", id="deadline"),
        pytest.param({"budget_usd": 0}, "budget_usd", id="budget"),
        pytest.param({"max_gpus": 0}, "max_gpus", id="max-gpus"),
        pytest.param({"gpu_class": "toaster"}, "gpu_class", id="class"),
        pytest.param({"network": "carrier-pigeon"}, "network", id="network"),
        pytest.param({"seq_len": 10**7}, "seq_len", id="seq"),
    ],
)
def test_bad_plan_inputs(kwargs, match):
    with pytest.raises(InvalidValueError, match=match):
        plan_training("llama-3-8b", **kwargs)


def test_render_columns():
    text = render_training_plan(plan_training("llama-3-8b", task="qlora", limit=3))
    lines = text.splitlines()
    assert lines[0].startswith("llama-3-8b · qlora")
    assert lines[2].split() == ["#", "rig", "layout", "peak/GPU", "tok/s", "MFU", "time", "GPUs", "cost", "notes"]
    assert "rent not ranked" in text


@pytest.mark.parametrize(("seconds", "text"), [(30, "30 s"), (90, "2 min"), (5400, "1.5 h"), (3 * 86400, "3.0 days")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
