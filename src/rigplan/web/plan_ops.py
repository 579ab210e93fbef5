"""Operations that search or lay out rigs: plan, power, launch, train, train-plan.

Each is a pure function of its request (and :class:`~.inputs.Inputs`) returning the dict the
CLI prints with ``--json``.
"""

from __future__ import annotations

from typing import Any

from . import schemas
from .inputs import Inputs

SECONDS_PER_HOUR = 3600


def launch(req: schemas.LaunchRequest, inputs: Inputs) -> dict[str, Any]:
    """The commands and config files that run the setup (`rigplan launch --json`), plus `text`:
    every command as the shell reads it, one flag per line."""
    from rigplan import launch_plan, training_launch_plan

    model, rig = inputs.model_name(req.model), inputs.rig(req.rig)
    if req.task == "serve":
        plan = launch_plan(
            model,
            rig,
            engine=req.engine,
            quant=req.quant,
            context=req.context,
            users=req.users,
            kv_dtype=req.kv_dtype,
            split=req.split,
            tensor_parallel=req.tensor_parallel,
            pipeline_parallel=req.pipeline_parallel,
            gpu_layers=req.gpu_layers,
            network=req.network,
        )
    else:
        plan = training_launch_plan(model, rig, task=req.task, script=req.script, network=req.network)
    out = plan.to_dict()
    out["text"] = "\n\n".join((f"# {c.where}\n" if c.where else "") + c.text(multiline=True) for c in plan.commands)
    return out


def plan(req: schemas.PlanRequest, inputs: Inputs) -> dict[str, Any]:
    """Ranked rigs with estimate, power, platform, whole-rig cost, why and avoid-if; or, when
    none qualifies, what each constraint excluded and the nearest miss (`rigplan plan --json`)."""
    from rigplan import parse_price_overrides, plan_rigs

    result = plan_rigs(
        inputs.model(req.model),
        quant=req.quant,
        context=req.context,
        users=req.users,
        min_tokens_per_s=req.min_tokens_per_s,
        prompt_tokens=req.prompt_tokens,
        output_tokens=req.output_tokens,
        budget_usd=req.budget,
        max_watts=req.max_watts,
        circuit=req.circuit,
        max_gpus=req.max_gpus,
        gpu_class=req.gpu_class,
        platform=req.platform,
        nvlink=req.nvlink,
        have=req.have,
        engine=req.engine,
        objective=req.objective,
        top=req.top,
        prices=parse_price_overrides(req.price),
        kwh_price=req.kwh_price,
    )
    return result.to_dict()


def power(req: schemas.PowerRequest, inputs: Inputs) -> dict[str, Any]:
    """PSU size (ATX 3.x and 2.x), power leads, wall circuits under the 80 % rule, a power
    limit's speed cost and the electricity bill (`rigplan power --json`)."""
    from rigplan import power_report

    report = power_report(
        inputs.rig(req.rig),
        platform=req.platform,
        circuit=req.circuit,
        power_limit=req.power_limit,
        kwh_price=req.kwh_price,
        model=inputs.model(req.model) if req.model else None,
        quant=req.quant,
        engine=req.engine,
    )
    return report.to_dict()


def train(req: schemas.TrainRequest, inputs: Inputs) -> dict[str, Any]:
    """Memory per GPU (weights, gradients, optimizer states, activations), tokens/s with a
    range, time to train and cost of one training layout (`rigplan train --json`)."""
    from rigplan import estimate_training, training_fit_advice

    kw = req.model_dump(exclude={"model", "rig"})
    e = estimate_training(inputs.model(req.model), inputs.rig(req.rig), **kw)
    return e.to_dict() | {"would_fit_with": [a.text() for a in training_fit_advice(e)]}


def train_plan(req: schemas.TrainPlanRequest, inputs: Inputs) -> dict[str, Any]:
    """Rigs for a training job, each with its fastest layout that fits, ranked by cost to buy
    or time to train (`rigplan plan MODEL --task ... --json`)."""
    from rigplan import plan_training

    result = plan_training(
        inputs.model(req.model),
        task=req.task,
        tokens=req.tokens,
        deadline_s=req.deadline_hours * SECONDS_PER_HOUR if req.deadline_hours else None,
        budget_usd=req.budget,
        max_gpus=req.max_gpus,
        gpu_class=req.gpu_class,
        gpus=req.gpu or None,
        seq_len=req.seq_len,
        objective=req.objective,
        allow_offload=req.allow_offload,
        limit=req.limit,
    )
    return result.to_dict()
