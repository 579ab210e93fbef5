"""``rigplan train``: one training estimate; and the helpers ``rigplan plan --task`` calls."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from ..errors import InvalidValueError
from ..units import format_gib, format_rate
from . import app
from .output import console, print_json, table

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|hours?|d|days?|w|weeks?)\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | None) -> float | None:
    """``'24h'`` → 86400.0; ``'3d'``, ``'90m'``, ``'3600s'`` also work (a unit is required)."""
    if text is None:
        return None
    m = _DURATION.match(text)
    if not m:
        raise InvalidValueError("deadline", f"cannot read {text!r}: use e.g. 24h, 3d, 90m")
    unit = m.group(2).lower()[0]
    value = float(m.group(1)) * _SECONDS["m" if unit == "m" else unit]
    if value <= 0:
        raise InvalidValueError("deadline", f"must be positive, got {text!r}")
    return value


def parse_tokens(text: str | None) -> float | None:
    """``'1e9'``, ``'500M'``, ``'2B'``, ``'1.5T'`` → a number of tokens."""
    if text is None:
        return None
    m = re.match(r"^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmbt])?\s*$", text, re.IGNORECASE)
    if not m:
        raise InvalidValueError("tokens", f"cannot read {text!r}: use e.g. 1e9, 500M, 2B")
    scale = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}.get((m.group(2) or "").lower(), 1.0)
    value = float(m.group(1)) * scale
    if value <= 0:
        raise InvalidValueError("tokens", f"must be positive, got {text!r}")
    return value


def training_plan_output(
    model: str,
    *,
    task: str,
    tokens: str | None = None,
    deadline: str | None = None,
    budget: float | None = None,
    max_gpus: int | None = None,
    gpu_class: str | None = None,
    gpus: list[str] | None = None,
    seq_len: int = 2048,
    objective: str = "cheapest",
    allow_offload: bool = False,
    limit: int = 10,
    json: bool = False,
    have: list[str] | None = None,
) -> Any:
    """Plan a training job, print it and return the plan (what ``rigplan plan MODEL --task ...`` runs)."""
    from ..training import plan_training, render_training_plan

    plan = plan_training(
        model,
        task=task,
        tokens=parse_tokens(tokens),
        deadline_s=parse_duration(deadline),
        budget_usd=budget,
        max_gpus=max_gpus,
        gpu_class=gpu_class,
        gpus=gpus or None,
        seq_len=seq_len,
        objective=objective,
        allow_offload=allow_offload,
        have=have or (),
        limit=limit,
    )
    if json:
        print_json(plan.to_dict())
    else:
        print(render_training_plan(plan))  # plain text, already laid out
    return plan


def render_training_estimate(d: dict[str, Any]) -> None:
    con = console()
    verdict = "fits" if d["fits"] else "DOES NOT FIT"
    par = d["parallel"]
    con.print(
        f"{d['model']} · {d['method']} · {d['precision']} · {d['rig']} · seq {d['seq_len']:,} · "
        f"micro-batch {d['micro_batch']} × {d['grad_accumulation']} × DP {par['data']} · TP {par['tensor']} · "
        f"PP {par['pipeline']} · ZeRO-{d['zero_stage']} · checkpointing {d['activation_checkpointing']} — {verdict}"
    )
    stages: dict[int, dict[str, Any]] = {}
    for g in d["memory"]["per_gpu"]:
        stages.setdefault(g["pipeline_stage"], g)
    rows = [
        [
            f"stage {s}" if len(stages) > 1 else g["gpu"],
            format_gib(g["weights_bytes"]),
            format_gib(g["gradients_bytes"]),
            format_gib(g["optimizer_states_bytes"]),
            format_gib(g["gathered_params_bytes"]),
            format_gib(g["activations_bytes"] + g["logits_bytes"]),
            format_gib(g["overhead_bytes"]),
            format_gib(g["total_bytes"]),
            format_gib(g["capacity_bytes"]),
            "yes" if g["fits"] else "NO",
        ]
        for s, g in sorted(stages.items())
    ]
    con.print(
        table(
            None,
            [
                "per GPU",
                "weights",
                "grads",
                "optimizer",
                "gathered",
                "activations",
                "overhead",
                "total",
                "capacity",
                "fits",
            ],
            rows,
            right=set(range(1, 9)),
        )
    )
    if d["memory"]["host_bytes"]:
        con.print(f"host RAM per node: {format_gib(d['memory']['host_bytes'])}")
    sp = d["speed"]
    if sp["tokens_per_s"] is None:
        con.print(f"speed unknown: {sp['unavailable_reason']}")
    else:
        lo, hi = sp["tokens_per_s_range"]
        con.print(
            f"{format_rate(sp['tokens_per_s'])} ({lo:,.0f}–{hi:,.0f}), "
            f"{format_rate(sp['tokens_per_s_per_gpu'])} per GPU, "
            f"MFU {sp['mfu']:.0%}, step {sp['step_time_s']:.2f} s · profile {sp['profile']}"
        )
    if d["time_to_train_s"] is not None:
        from ..training.planner import format_duration

        con.print(f"time to train {d['tokens']:.3g} tokens: {format_duration(d['time_to_train_s'])}")
    cost = d["cost"]
    buy = f"${cost['buy_usd']:,.0f}" if cost["buy_usd"] is not None else "price unknown"
    con.print(f"GPUs to buy: {buy} ({cost['buy_note']}); rent: not estimated")


@app.command("train")
def train_cmd(
    model: Annotated[
        str, typer.Argument(help="Catalogue id (rigplan models), a config.json / model folder, or a HF repo id.")
    ],
    rig: Annotated[str, typer.Option(help="Rig: 'rtx-4090', '8x h100-sxm', '16 nodes x 8x h100-sxm' or 'local'.")],
    method: Annotated[str, typer.Option(help="full, lora, qlora or pretrain.")] = "full",
    seq_len: Annotated[int, typer.Option(help="Tokens per sequence.")] = 2048,
    micro_batch: Annotated[int, typer.Option(help="Sequences per GPU per forward/backward.")] = 1,
    global_batch: Annotated[
        int | None, typer.Option(help="Sequences per optimizer step (default micro-batch × DP).")
    ] = None,
    zero_stage: Annotated[str, typer.Option(help="0-3, fsdp-full, fsdp-grad-op or fsdp-hybrid.")] = "0",
    checkpointing: Annotated[
        str,
        typer.Option("--checkpointing", "--activation-checkpointing", help="none, selective or full recomputation."),
    ] = "none",
    precision: Annotated[str, typer.Option(help="bf16, f16, fp8 or f32.")] = "bf16",
    optimizer: Annotated[str, typer.Option(help="adamw, adamw-8bit or sgd.")] = "adamw",
    lora_rank: Annotated[int, typer.Option(help="LoRA rank r.")] = 16,
    lora_targets: Annotated[str, typer.Option(help="all-linear, attention or qv.")] = "all-linear",
    offload: Annotated[
        str | None, typer.Option(help="cpu: optimizer states (and more at ZeRO-2/3) in host RAM.")
    ] = None,
    tensor_parallel: Annotated[int, typer.Option(help="Tensor-parallel degree.")] = 1,
    pipeline_parallel: Annotated[int, typer.Option(help="Pipeline-parallel degree.")] = 1,
    tokens: Annotated[str | None, typer.Option(help="Training tokens for the time to train: 1e9, 500M, 2B.")] = None,
    network: Annotated[
        str | None, typer.Option(help="Between nodes: ib-ndr, ib-hdr, roce-400g, eth-100g, eth-25g, eth-10g.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the estimate as JSON.")] = False,
) -> None:
    """Training memory per GPU, tokens/s, MFU, time and GPU cost of MODEL on a rig.

    Exit status: 0 when it fits, 1 when it does not, 2 when it cannot be estimated.

    Example: rigplan train llama-3-8b --rig '8x h100-sxm' --zero-stage 3 --checkpointing full --tokens 1e9
    """
    from ..training import estimate_training

    ckpt: Any = {"none": False, "full": True}.get(checkpointing.lower(), checkpointing)
    zero: Any = int(zero_stage) if zero_stage.isdigit() else zero_stage
    e = estimate_training(
        model,
        rig,
        method=method,
        seq_len=seq_len,
        micro_batch=micro_batch,
        global_batch=global_batch,
        zero_stage=zero,
        activation_checkpointing=ckpt,
        precision=precision,
        optimizer=optimizer,
        lora_rank=lora_rank,
        lora_targets=lora_targets,
        offload=offload,
        tensor_parallel=tensor_parallel,
        pipeline_parallel=pipeline_parallel,
        tokens=parse_tokens(tokens),
        network=network,
    )
    d = e.to_dict()
    if json:
        print_json(d)
    else:
        render_training_estimate(d)
    raise typer.Exit(0 if e.fits else 1)
