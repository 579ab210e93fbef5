"""What the GPU's software stack can train: bf16 needs Ampere / CDNA or later (Turing, Volta and
Vega 20 train in f16), and QLoRA's bitsandbytes has no ROCm build for gfx906 (MI50).  The single
estimate refuses with the reason; the training planner uses f16 where bf16 is missing and leaves
out what cannot run, saying so."""

from __future__ import annotations

import pytest

from rigplan import estimate_training
from rigplan.errors import UnsupportedError
from rigplan.training import plan_training
from rigplan.training.setup import Precision

REFUSED = [
    ("mi50-32gb", "qlora", "bf16", "bitsandbytes has no ROCm build for gcn5"),
    ("mi50-32gb", "qlora", "f16", "bitsandbytes has no ROCm build for gcn5"),
    ("mi50-32gb", "lora", "bf16", "has no bf16 support"),
    ("t4", "lora", "bf16", "has no bf16 support"),
    ("v100-sxm2-32gb", "full", "bf16", "has no bf16 support"),
]


@pytest.mark.parametrize(("gpu", "method", "precision", "why"), REFUSED)
def test_what_the_stack_cannot_run_is_refused_with_the_reason(gpu, method, precision, why):
    with pytest.raises(UnsupportedError, match=why):
        estimate_training("llama-3-8b", f"2x {gpu}", method=method, precision=precision, zero_stage=3)


@pytest.mark.parametrize(("gpu", "method"), [("mi50-32gb", "lora"), ("t4", "qlora"), ("rx-7900-xtx", "qlora")])
def test_what_it_can_run_is_estimated(gpu, method):
    e = estimate_training("llama-3-8b", f"2x {gpu}", method=method, precision="f16", zero_stage=3)
    assert e.speed is not None and e.speed.tokens_per_s > 0


def test_the_planner_trains_in_f16_where_bf16_is_missing_and_says_so():
    plan = plan_training("llama-3-8b", task="lora", gpus=["t4", "mi50-32gb", "rtx-3090"], limit=50)
    precisions = {o.rig.gpus[0].id: o.setup.precision for o in plan.options}
    assert precisions["t4"] is Precision.F16 and precisions["mi50-32gb"] is Precision.F16
    assert precisions["rtx-3090"] is Precision.BF16
    assert any(n.startswith("f16 mixed precision") and "t4" in n and "mi50-32gb" in n for n in plan.notes)


def test_the_planner_leaves_out_qlora_where_bitsandbytes_has_no_build():
    plan = plan_training("llama-3-70b", task="qlora", gpus=["mi50-32gb", "rtx-3090"], limit=50)
    assert {o.rig.gpus[0].id for o in plan.options} == {"rtx-3090"}
    assert any("bitsandbytes" in n and "mi50-32gb" in n for n in plan.notes)


def test_gpus_left_out_for_one_reason_share_one_note():
    plan = plan_training("llama-3-8b", task="lora", precision="fp8", gpu_class="datacenter", limit=5)
    fp8 = [n for n in plan.notes if "FP8 tensor cores" in n]
    assert len(fp8) == 1 and fp8[0].count(",") >= 2  # one note, many GPUs


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"task": "full", "lora_rank": 64}, "lora_rank"), ({"task": "lora", "network": "token-ring"}, "network")],
)
def test_the_planner_refuses_what_the_estimate_refuses(kw, field):
    from rigplan.errors import InvalidValueError

    with pytest.raises(InvalidValueError) as err:
        plan_training("llama-3-8b", **kw)
    assert err.value.field == field


def test_a_rack_nvlink_rig_with_one_gpu_per_node_takes_a_link():
    e = estimate_training("llama-3-8b", "4 nodes x gb200", method="lora", link="nvlink", zero_stage=3)
    assert e.speed is not None


def test_a_whole_machine_is_priced_as_the_machine():
    plan = plan_training("llama-3-70b", task="qlora", gpus=["dgx-spark", "ryzen-ai-max-395-128gb"], limit=5)
    assert plan.options and all(o.rig.gpu_count == 1 for o in plan.options)  # one machine per rig
    for o in plan.options:
        assert [i.kind for i in o.cost.machine_items] != [] and not o.cost.unpriced
        assert all(i.kind != "platform" for i in o.cost.machine_items)
