"""``rigplan train``: one training estimate; and the helpers ``rigplan plan --task`` calls."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import TRAINING_OPTIONS, InvalidValueError, format_gib, format_rate
from . import app
from .options import request_option
from .output import console, print_json, table

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|hours?|d|days?|w|weeks?)\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

# The web API's bounds (rigplan.web.schemas): far past any real run, short of absurd figures.
MAX_TRAIN_TOKENS = 1e15  # ~70x the largest published pre-training corpus (Llama 3: 15T tokens)
MAX_DEADLINE_S = 100_000 * 3600  # 100,000 hours, ~11 years


def parse_duration(text: str | None) -> float | None:
    """``'24h'`` → 86400.0; ``'3d'``, ``'90m'``, ``'3600s'`` also work (a unit is required)."""
    if text is None:
        return None
    m = _DURATION.match(text)
    if not m:
        raise InvalidValueError("deadline", f"cannot read {text!r}: use e.g. 24h, 3d, 90m")
    unit = m.group(2).lower()[0]
    value = float(m.group(1)) * _SECONDS["m" if unit == "m" else unit]
    if value <= 0 or value > MAX_DEADLINE_S:
        raise InvalidValueError(
            "deadline", f"must be above 0 and at most {MAX_DEADLINE_S // 86400:,} days, got {text!r}"
        )
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
    if value <= 0 or value > MAX_TRAIN_TOKENS:
        raise InvalidValueError("tokens", f"must be above 0 and at most {MAX_TRAIN_TOKENS:.0e}, got {text!r}")
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
    from .. import plan_training, render_training_plan

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


@dataclass(frozen=True)
class TrainingConfig:
    """The parts of the user's config.toml training reads: [prices], [rental], [electricity]."""

    prices: dict[str, float]
    rental: dict[str, float]
    usd_per_kwh: float | None


def load_training_config(path: Path | None = None) -> TrainingConfig:
    """Read config.toml (the CLI's edge): ``[rental] h100-sxm = 2.5`` ($/GPU-hour on demand),
    ``[electricity] usd_per_kwh = 0.30``, and the ``[prices]`` the planner reads.

    Raises:
        DataFileError: unreadable TOML or a value that is not a positive number / GPU id.
    """
    import tomllib

    from .. import DataFileError, load_catalog, load_user_prices, user_config_path

    path = path or user_config_path()
    if not path.is_file():
        return TrainingConfig({}, {}, None)
    catalog = load_catalog()
    prices = load_user_prices(path, catalog)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DataFileError(str(path), "toml", str(exc)) from None
    rental: dict[str, float] = {}
    for gpu, usd in dict(data.get("rental", {})).items():
        if gpu not in catalog.gpus or isinstance(usd, bool) or not isinstance(usd, int | float) or usd <= 0:
            raise DataFileError(str(path), "rental", f"{gpu} = {usd!r}: expected a catalogue GPU id = $/GPU-hour > 0")
        rental[gpu] = float(usd)
    kwh = dict(data.get("electricity", {})).get("usd_per_kwh")
    if kwh is not None and (isinstance(kwh, bool) or not isinstance(kwh, int | float) or kwh <= 0):
        raise DataFileError(str(path), "electricity", f"usd_per_kwh = {kwh!r}: expected a number > 0")
    return TrainingConfig(prices, rental, None if kwh is None else float(kwh))


def render_training_estimate(d: dict[str, Any]) -> None:
    con = console()
    verdict = "fits" if d["fits"] else "DOES NOT FIT"
    par = d["parallel"]
    con.print(
        f"{d['model']} · {d['method']} · {d['precision']} · {d['rig']} · seq {d['seq_len']:,} · "
        f"micro-batch {d['micro_batch']} × {d['grad_accumulation']} × DP {par['data']} · TP {par['tensor']} · "
        f"PP {par['pipeline']} · ZeRO-{d['zero_stage']} · checkpointing {d['activation_checkpointing']} — {verdict}"
    )
    _render_training_memory(d)
    if d["memory"]["host_bytes"]:
        con.print(f"host RAM per node: {format_gib(d['memory']['host_bytes'])}")
    sp = d["speed"]
    if sp["tokens_per_s"] is None:
        con.print(f"speed unknown: {sp['unavailable_reason']}")
    else:
        lo, hi = sp["tokens_per_s_range"]
        default = " (default)" if sp["framework_default"] else ""
        con.print(
            f"{format_rate(sp['tokens_per_s'])} ({lo:,.0f}–{hi:,.0f}), "
            f"{format_rate(sp['tokens_per_s_per_gpu'])} per GPU, "
            f"MFU {sp['mfu']:.0%}, step {sp['step_time_s']:.2f} s · framework {sp['framework']}{default} "
            f"· profile {sp['profile']}"
        )
    if d["time_to_train_s"] is not None:
        from .. import format_duration

        con.print(f"time to train {d['tokens']:.3g} tokens: {format_duration(d['time_to_train_s'])}")
    render_training_cost(d)
    for w in d["warnings"]:
        con.print(f"warning: {w}")


def _render_training_memory(d: dict[str, Any]) -> None:
    """Per-GPU memory, one row per pipeline stage (one GPU stands for its stage)."""
    con = console()
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


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.0f}"


def render_training_cost(d: dict[str, Any]) -> None:
    """Buy (whole machine) vs rent, electricity and break-even, each with its source and date."""
    con = console()
    cost = d["cost"]
    items = "; ".join(
        f"{i['item']} {_usd(i['usd'])} ({i['kind']}" + (f", {i['as_of']}" if i["as_of"] else "") + ")"
        for i in cost["machine_items"]
    )
    con.print(f"buy: {_usd(cost['machine_usd'])} — {items}")
    for note in cost["notes"]:
        con.print(f"  {note}")
    if cost["energy_kwh"] is not None:
        con.print(
            f"electricity: {cost['energy_kwh']:,.0f} kWh at {cost['wall_watts']:,} W from the wall = "
            f"{_usd(cost['electricity_usd'])} at ${cost['usd_per_kwh']:.3f}/kWh ({cost['kwh_source']})"
        )
    for q in cost["rent"]:
        total = cost["rent_on_demand_usd"] if q["tier"] == "on-demand" else cost["rent_spot_usd"]
        when = f", {q['as_of']}" if q["as_of"] else ""
        con.print(
            f"rent {q['tier']}: ${q['usd_per_gpu_hour']:.2f}/GPU-hour ({q['provider']}{when}) → "
            f"{_usd(total) if total is not None else 'per run: give --tokens'}"
        )
    if not cost["rent"]:
        con.print("rent: no sourced hourly price for this GPU (add one to config.toml [rental])")
    if cost["break_even_runs"] is not None:
        con.print(f"break-even: buying pays off after {cost['break_even_runs']:,} such runs (vs renting on demand)")
    sources = sorted({q["source"] for q in cost["rent"]} | {i["source"] for i in cost["machine_items"]})
    for src in sources:
        con.print(f"  source: {src}")


# `rigplan train`: the options of rigplan.estimate_training, from rigplan.TRAINING_OPTIONS.
TrainModelArg = Annotated[
    str, typer.Argument(help="Catalogue id (rigplan models), a config.json / model folder, or a HF repo id.")
]
TrainRigOpt = Annotated[str, typer.Option(help="Rig: 'rtx-4090', '8x h100-sxm', '16 nodes x 8x h100-sxm' or 'local'.")]
_T = TRAINING_OPTIONS
MethodOpt = request_option(_T, "method")
SeqLenOpt = request_option(_T, "seq_len")
MicroBatchOpt = request_option(_T, "micro_batch")
GlobalBatchOpt = request_option(_T, "global_batch")
ZeroStageOpt = request_option(_T, "zero_stage", python_type=str)
CheckpointingOpt = request_option(_T, "activation_checkpointing", "--checkpointing", "--activation-checkpointing")
PrecisionOpt = request_option(_T, "precision")
OptimizerOpt = request_option(_T, "optimizer")
LoraRankOpt = request_option(_T, "lora_rank")
LoraTargetsOpt = request_option(_T, "lora_targets")
OffloadOpt = request_option(_T, "offload")
TensorParallelOpt = request_option(_T, "tensor_parallel")
PipelineParallelOpt = request_option(_T, "pipeline_parallel")
ContextParallelOpt = request_option(_T, "context_parallel")
ExpertParallelOpt = request_option(_T, "expert_parallel")
VirtualPipelineOpt = request_option(_T, "virtual_pipeline")
FrameworkOpt = request_option(_T, "framework")
TokensOpt = request_option(_T, "tokens", python_type=str)
NetworkOpt = request_option(_T, "network")
LinkOpt = request_option(_T, "link")
KwhOpt = request_option(_T, "kwh_price", "--kwh-price")
ForceOpt = request_option(_T, "force", "--force")
TrainJsonOpt = Annotated[bool, typer.Option("--json", help="Print the estimate as JSON.")]


@app.command("train")
def train_cmd(
    model: TrainModelArg,
    rig: TrainRigOpt,
    method: MethodOpt = "full",
    seq_len: SeqLenOpt = 2048,
    micro_batch: MicroBatchOpt = 1,
    global_batch: GlobalBatchOpt = None,
    zero_stage: ZeroStageOpt = 0,
    checkpointing: CheckpointingOpt = "none",
    precision: PrecisionOpt = "bf16",
    optimizer: OptimizerOpt = "adamw",
    lora_rank: LoraRankOpt = 16,
    lora_targets: LoraTargetsOpt = "all-linear",
    offload: OffloadOpt = None,
    tensor_parallel: TensorParallelOpt = 1,
    pipeline_parallel: PipelineParallelOpt = 1,
    context_parallel: ContextParallelOpt = 1,
    expert_parallel: ExpertParallelOpt = 1,
    virtual_pipeline: VirtualPipelineOpt = 1,
    framework: FrameworkOpt = None,
    tokens: TokensOpt = None,
    network: NetworkOpt = None,
    link: LinkOpt = None,
    kwh_price: KwhOpt = None,
    force: ForceOpt = False,
    json: TrainJsonOpt = False,
) -> None:
    """Training memory per GPU, tokens/s, MFU, time, and buy-vs-rent cost of MODEL on a rig.

    Exit status: 0 when it fits, 1 when it does not, 2 when it cannot be estimated.

    Example: rigplan train llama-3-8b --rig '8x h100-sxm' --zero-stage 3 --checkpointing full --tokens 1e9
    """
    # zero_stage ("3", "fsdp-full") and checkpointing ("none", "full") are read by the training model
    options = {k: v for k, v in locals().items() if k not in ("model", "rig", "json", "checkpointing")}
    from .. import estimate_training, training_fit_advice

    config = load_training_config()
    options |= {
        "activation_checkpointing": checkpointing,
        "tokens": parse_tokens(tokens),
        "prices": config.prices,
        "rental": config.rental,
        "kwh_price": kwh_price if kwh_price is not None else config.usd_per_kwh,
    }
    e = estimate_training(model, rig, **options)
    d = e.to_dict()
    d["would_fit_with"] = [a.text() for a in training_fit_advice(e)]
    if json:
        print_json(d)
    else:
        render_training_estimate(d)
        _render_fit_advice(d)
    raise typer.Exit(0 if e.fits else 1)


def _render_fit_advice(d: dict[str, Any]) -> None:
    con = console()
    if d["fits"]:
        return
    if d["would_fit_with"]:
        con.print("would fit with: " + "; or ".join(d["would_fit_with"]))
    else:
        con.print(
            "would fit with: no change tried is enough (ZeRO stage, recomputation, 8-bit optimizer, CPU offload, "
            f"LoRA / QLoRA): rigplan plan {d['model']} --task {d['method']} finds rigs that fit"
        )
