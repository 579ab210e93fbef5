"""``rigplan plan`` and ``rigplan power``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from .. import PLAN_OPTIONS, POWER_OPTIONS, format_gib, format_rate, format_usd
from . import app
from .options import request_option
from .output import console, print_json, table

if TYPE_CHECKING:
    from .. import Plan, PowerReport

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
CircuitOpt = request_option(PLAN_OPTIONS, "circuit")
KwhOpt = request_option(PLAN_OPTIONS, "kwh_price", "--kwh-price")
# `rigplan power`: the options of rigplan.power_report, from its option table.
PowerLimitOpt = request_option(POWER_OPTIONS, "power_limit", "--power-limit")
PowerPlatformOpt = request_option(POWER_OPTIONS, "platform")
PowerModelOpt = request_option(POWER_OPTIONS, "model")
PowerQuantOpt = request_option(POWER_OPTIONS, "quant")
PowerEngineOpt = request_option(POWER_OPTIONS, "engine")

# `rigplan plan`: the options of rigplan.plan_rigs, from its option table.
ModelArg = Annotated[
    str,
    typer.Argument(help="Catalogue id (rigplan models), a config.json / .gguf path, or a Hugging Face repo id."),
]
QuantOpt = request_option(PLAN_OPTIONS, "quant")
ContextOpt = request_option(PLAN_OPTIONS, "context")
UsersOpt = request_option(PLAN_OPTIONS, "users")
MinSpeedOpt = request_option(PLAN_OPTIONS, "min_tokens_per_s", "--min-tokens-per-s", "--min-tok-s")
BudgetOpt = request_option(PLAN_OPTIONS, "budget_usd", "--budget")
MaxWattsOpt = request_option(PLAN_OPTIONS, "max_watts", "--max-watts")
MaxGpusOpt = request_option(PLAN_OPTIONS, "max_gpus", "--max-gpus")
ClassOpt = request_option(PLAN_OPTIONS, "gpu_class", "--class")
PlatformOpt = request_option(PLAN_OPTIONS, "platform")
NvlinkOpt = request_option(PLAN_OPTIONS, "nvlink", "--nvlink")
EngineOpt = request_option(PLAN_OPTIONS, "engine")
ObjectiveOpt = request_option(
    PLAN_OPTIONS,
    "objective",
    extra="; with --task: cheapest (buy the whole machine), rent (same GPUs on demand) or fastest.",
)
TopOpt = request_option(PLAN_OPTIONS, "top")
PromptTokensOpt = request_option(PLAN_OPTIONS, "prompt_tokens")
OutputTokensOpt = request_option(PLAN_OPTIONS, "output_tokens")
DiscontinuedOpt = request_option(PLAN_OPTIONS, "include_discontinued", "--include-discontinued")
# Options of the CLI only: how prices and owned parts are written, and the training mode.
HaveOpt = Annotated[list[str] | None, typer.Option(help="GPUs you already own ('rtx-3090', '2x rtx-3090'); repeat.")]
PriceOpt = Annotated[list[str] | None, typer.Option(help="Your price for a GPU, GPU=USD (e.g. rtx-3090=700); repeat.")]
UsedOpt = Annotated[bool, typer.Option("--used", help="Buy GPUs used where a used price is sourced.")]
NewOpt = Annotated[bool, typer.Option("--new", help="Buy GPUs new (street, else launch price).")]
TaskOpt = Annotated[str | None, typer.Option(help="Plan training instead of inference: lora, qlora, full or pretrain.")]
TokensOpt = Annotated[
    str | None, typer.Option(help="Training tokens with --task (e.g. 1e9, 500M); default one epoch guess.")
]
DeadlineOpt = Annotated[str | None, typer.Option(help="Longest training time with --task (e.g. 24h, 3d).")]
SeqLenOpt = Annotated[int, typer.Option("--seq-len", help="Training sequence length with --task.")]
OffloadOpt = Annotated[bool, typer.Option("--allow-offload", help="With --task: allow optimizer offload to CPU RAM.")]
NoUserCalibrationOpt = Annotated[
    bool,
    typer.Option(
        "--no-user-calibration", help="Ignore your `rigplan calibrate` results: the plan any machine would print."
    ),
]
#: --seq-len's default (training mode only).
DEFAULT_SEQ_LEN = 2048
#: The speed column's header by the plan JSON's ``speed_basis`` (what ``speed_tokens_per_s`` is).
SPEED_HEADERS = {"decode": "decode tok/s", "per-user, prompts included": "tok/s per user"}


def _speed(d: dict[str, Any]) -> str:
    """The pick's speed as the plan ranks it (decode for one user, per user with prompts for several)."""
    value, rng = d["speed_tokens_per_s"], d["speed_tokens_per_s_range"]
    if value is None:
        return "—"
    return format_rate(value) + (f" ({rng[0]:.3g}–{rng[1]:.3g})" if rng else "")


def _fullest(d: dict[str, Any]) -> str:
    g = max(d["estimate"]["memory"]["per_gpu"], key=lambda x: x["total_bytes"] / max(x["usable_bytes"], 1))
    return f"{format_gib(g['total_bytes'])} / {format_gib(g['usable_bytes'])}"


def _cost(d: dict[str, Any]) -> str:
    text = format_usd(d["cost_usd"])
    return text + ("+" if d["cost_usd"] is not None and not d["cost_complete"] else "")


def _power_cell(d: dict[str, Any]) -> str:
    p = d["power"]
    if p["psu_watts"] is None:
        return f"{p['board_watts']} W (built in)"
    circ = next((k for k, v in p["circuits"].items() if v["fits"]), "2+ circuits")
    return f"{p['psu_watts']:,} W PSU · {circ}"


def render_plan(plan: Plan) -> None:
    """The plan as a ranked table, then each pick's why / avoid if / next step."""
    con = console()
    d = plan.to_dict()
    c = d["constraints"]
    users = f" · {c['users']} users" if c["users"] > 1 else ""
    con.print(
        f"{d['model']} · quant {c['quant']} · context {c['context']:,}{users} · objective {d['objective']} — "
        f"{d['qualified']} rig{'s' if d['qualified'] != 1 else ''} qualify of {d['considered']:,} candidates"
    )
    for note in d["notes"]:
        con.print(f"note: {note}")
    recs = d["recommendations"]
    if not recs:
        _render_no_rig(d)
        return
    speed = SPEED_HEADERS[recs[0]["speed_basis"]]
    columns = ["#", "rig", "quant · engine", "fullest GPU", speed, "first token", "users", "cost", "power"]
    con.print(table(None, columns, [_plan_row(r, label=False) for r in recs], right={0, 4, 5, 6, 7}))
    also = d["also_worth_a_look"]
    if also:  # a table of its own, so its labels do not widen the main one
        con.print(f"Also worth a look (# is the place by {d['objective']}):")
        con.print(table(None, columns, [_plan_row(r) for r in also], right={0, 4, 5, 6, 7}))
    for r in [*recs, *also]:
        _render_pick(r)


def _rig_cell(r: dict[str, Any]) -> str:
    return r["rig"] + (f" ({r['standout']})" if r["standout"] else "")


def _plan_row(r: dict[str, Any], *, label: bool = True) -> list[str]:
    ttft = r["estimate"]["speed"]["ttft_s"]
    return [
        str(r["rank"]),
        _rig_cell(r) if label else r["rig"],
        f"{r['quant']} · {r['engine']}",
        _fullest(r),
        _speed(r),
        "—" if ttft is None else f"{ttft:.2f} s",
        str(r["users_served"] if r["users_served"] is not None else "—"),
        _cost(r),
        _power_cell(r),
    ]


def _render_pick(r: dict[str, Any]) -> None:
    con = console()
    con.print(f"\n{r['rank']}. {_rig_cell(r)} — {r['quant']} on {r['engine']}, {_cost(r)}")
    for line in r["why"]:
        con.print(f"   why: {line}")
    for line in r["avoid_if"]:
        con.print(f"   avoid if {line}")
    if r["next_step"]:
        con.print(f"   next step up: {r['next_step']}")
    prices = [
        f"{x['item']} {format_usd(x['usd'])} ({x['kind']}{', ' + x['as_of'] if x['as_of'] else ''})" for x in r["cost"]
    ]
    con.print("   cost: " + "; ".join(prices))


def _render_no_rig(d: dict[str, Any]) -> None:
    """Why no rig qualified: what each constraint excluded and the nearest miss."""
    con = console()
    con.print("No rig meets every constraint.")
    if d["excluded"]:
        con.print("excluded: " + ", ".join(f"{k} {v:,}" for k, v in d["excluded"].items()))
    miss = d["nearest_miss"]
    if miss:
        con.print(
            f"nearest miss: {miss['rig']} ({miss['quant']}, {miss['engine']}, {format_usd(miss['cost_usd'])}) — "
            + "; ".join(miss["failed"])
        )


@app.command("plan")
def plan_cmd(
    model: ModelArg,
    quant: QuantOpt = "any",
    context: ContextOpt = None,
    users: UsersOpt = 1,
    min_tokens_per_s: MinSpeedOpt = None,
    prompt_tokens: PromptTokensOpt = 512,
    output_tokens: OutputTokensOpt = 128,
    budget: BudgetOpt = None,
    max_watts: MaxWattsOpt = None,
    circuit: CircuitOpt = None,
    max_gpus: MaxGpusOpt = None,
    gpu_class: ClassOpt = None,
    platform: PlatformOpt = None,
    nvlink: NvlinkOpt = False,
    have: HaveOpt = None,
    engine: EngineOpt = None,
    objective: ObjectiveOpt = "cheapest",
    top: TopOpt = 5,
    price: PriceOpt = None,
    kwh_price: KwhOpt = None,
    used: UsedOpt = False,
    new: NewOpt = False,
    include_discontinued: DiscontinuedOpt = False,
    task: TaskOpt = None,
    tokens: TokensOpt = None,
    deadline: DeadlineOpt = None,
    seq_len: SeqLenOpt = DEFAULT_SEQ_LEN,
    allow_offload: OffloadOpt = False,
    no_user_calibration: NoUserCalibrationOpt = False,
    json: JsonOpt = False,
) -> None:
    """Rank the rigs that run MODEL under your budget, power and platform limits, with PSU,
    circuits, whole-rig cost and why each one wins; with --task, rigs to fine-tune or train it.

    Prices come from the catalogue (launch, street or used, each dated and sourced), your
    config file's [prices] table and --price.  Exit status: 0 when a rig qualifies, 1 when none
    does (the output says which constraint excluded what), 2 on bad input.

    Example: rigplan plan llama-2-70b --quant 4bit --budget 4000 --circuit 120v15a
    Example: rigplan plan llama-3-70b --task qlora --tokens 1e8 --deadline 24h
    """
    given = dict(locals())
    _check_mode_flags(given)
    if task is not None:
        from .train_cmds import training_plan_output

        training = training_plan_output(
            model, task=task, tokens=tokens, deadline=deadline, budget=budget, max_gpus=max_gpus,
            gpu_class=gpu_class, seq_len=seq_len, objective=objective, allow_offload=allow_offload,
            have=have, limit=top, json=json,
        )  # fmt: skip
        raise typer.Exit(0 if training.options else 1)
    plan = _inference_plan(given)
    if json:
        print_json(plan.to_dict())
    else:
        render_plan(plan)
    raise typer.Exit(0 if plan.recommendations else 1)


def _check_mode_flags(given: dict[str, Any]) -> None:
    """Refuse flags that do nothing in this mode (training flags without --task and back)."""
    from .. import InvalidValueError

    training = {
        "--tokens": given["tokens"] is not None,
        "--deadline": given["deadline"] is not None,
        "--seq-len": given["seq_len"] != DEFAULT_SEQ_LEN,
        "--allow-offload": given["allow_offload"],
    }
    inference = {
        "--engine": given["engine"] is not None,
        "--users": given["users"] != 1,
        "--min-tokens-per-s": given["min_tokens_per_s"] is not None,
        "--prompt-tokens": given["prompt_tokens"] != PLAN_OPTIONS["prompt_tokens"].default,
        "--output-tokens": given["output_tokens"] != PLAN_OPTIONS["output_tokens"].default,
        "--price": bool(given["price"]),
        "--nvlink": given["nvlink"],
        "--circuit": given["circuit"] is not None,
        "--max-watts": given["max_watts"] is not None,
        "--platform": given["platform"] is not None,
    }
    if given["used"] and given["new"]:
        raise InvalidValueError("used", "--used and --new exclude each other")
    unused = [flag for flag, on in (training if given["task"] is None else inference).items() if on]
    if unused:
        mode = "with --task" if given["task"] is not None else "without --task"
        raise InvalidValueError(unused[0].lstrip("-"), f"{', '.join(unused)} has no effect {mode}")


#: `rigplan plan` options passed to rigplan.plan_rigs under the same name.
_SAME_NAME = (
    "quant", "context", "users", "min_tokens_per_s", "max_watts", "max_gpus", "gpu_class", "platform", "nvlink",
    "engine", "objective", "top", "kwh_price", "include_discontinued", "prompt_tokens", "output_tokens",
)  # fmt: skip


def _inference_plan(given: dict[str, Any]) -> Plan:
    """``rigplan.plan_rigs`` with the CLI's flags (prices and GPUs from the user's config too)."""
    from .. import load_user_catalog, parse_price_overrides, plan_rigs

    user_catalog = load_user_catalog()
    options = {name: given[name] for name in _SAME_NAME}
    circuit = given["circuit"]
    options |= {
        "budget_usd": given["budget"],
        "circuit": circuit.lower() if circuit else None,
        "have": given["have"] or (),
        "prices": parse_price_overrides(given["price"] or [], user_catalog),
        "use_user_calibration": not given["no_user_calibration"],
        "condition": "used" if given["used"] else "new" if given["new"] else None,
    }
    return cast(
        "Plan",
        _with_progress(lambda progress: plan_rigs(given["model"], catalog=user_catalog, progress=progress, **options)),
    )


#: Show a progress bar only for sweeps slower than this (seconds).
PROGRESS_AFTER_S = 1.0


def _with_progress(run: Any) -> Any:
    """Run ``run(progress)``; a rich progress bar appears on stderr once it takes over a second."""
    import sys
    import time

    if not sys.stderr.isatty():
        return run(None)
    from rich.console import Console
    from rich.progress import Progress

    started = time.perf_counter()
    state: dict[str, Any] = {}

    def progress(done: int, total: int) -> None:
        if "bar" not in state:
            if time.perf_counter() - started < PROGRESS_AFTER_S:
                return
            bar = Progress(console=Console(stderr=True), transient=True)
            bar.start()
            state["bar"], state["task"] = bar, bar.add_task("planning", total=total)
        state["bar"].update(state["task"], completed=done, total=total)

    try:
        return run(progress)
    finally:
        if "bar" in state:
            state["bar"].stop()


def render_power(report: PowerReport) -> None:
    """`rigplan power`: the rig's draw, PSU, power leads, circuits, a power limit and the bill."""
    con = console()
    d = report.to_dict()
    p = d["power"]
    plat = d["platform"]
    where = (
        f" in {plat['name']} (PCIe {plat['pcie_generation']}.0 x{plat['pcie_lanes_per_gpu']} per GPU, {plat['nvlink']})"
        if plat
        else ""
    )
    con.print(f"{d['rig']}{where}")
    per_node = " per node" if p["nodes"] > 1 else ""
    rows = _power_rows(p, per_node)
    for name, c in p["circuits"].items():
        chosen = " ←" if name == d["circuit"] else ""
        rows.append([f"circuit {name}{per_node}", _circuit_cell(c) + chosen])
    if d["power_limit"]:
        rows += _limit_rows(d["power_limit"], d["circuit"], per_node)
    if d["kwh_price"] is not None:
        rows.append(["electricity", f"${d['energy_usd_per_hour']:.2f} an hour at ~{p['workload_wall_watts']:,} W"])
        if d["energy_usd_per_million_tokens"] is not None:
            per_m = f"${d['energy_usd_per_million_tokens']:.2f} at {format_rate(d['tokens_per_s'])}"
            rows.append(["  per million tokens", per_m])
    con.print(table(None, ["", ""], rows))
    for note in plat["notes"] if plat else ():
        con.print(f"note: {note}")


def _circuit_cell(c: dict[str, Any]) -> str:
    mark = "yes" if c["fits"] else f"no: {c['circuits_needed']} circuits"
    return f"{c['wall_watts']:,} of {c['continuous_capacity_watts']:,} W continuous: {mark}"


def _power_rows(p: dict[str, Any], per_node: str) -> list[list[str]]:
    """Board power, draw, the machine's rating, the PSU and its power leads."""
    rows = [
        ["GPU board power", f"{p['board_watts']:,} W"],
        ["GPU draw (batch-1 decode)", f"~{p['draw_watts']:,} W"],
        ["machine, rated", f"{p['system_watts']:,} W DC, {p['wall_watts']:,} W at the wall"],
    ]
    if p["host"]:
        rows.append(["CPU + rest of platform", f"{p['host']['cpu_watts']} W + {p['host']['base_watts']} W"])
    if p["psu_watts"] is not None:
        units = f" ({p['psu_units']} units)" if p["psu_units"] > 1 else ""
        rows += [
            ["PSU (ATX 3.x)", f"{p['psu_watts']:,} W{units}{per_node}"],
            ["PSU (ATX 2.x, no excursion rating)", f"{p['psu_watts_atx2']:,} W{per_node}"],
            ["transient peak", f"{p['transient_peak_watts']:,} W{per_node}"],
            ["GPU power leads", ", ".join(f"{v}x {k}" for k, v in p["connectors"].items()) or "none (baseboard)"],
        ]
        if "12v-2x6" in p["connectors"]:
            rows.append(["…or through adapters", f"{p['pcie_8pin_equivalent']}x 8-pin PCIe"])
    return rows


def _limit_rows(cap: dict[str, Any], circuit: str | None, per_node: str) -> list[list[str]]:
    """A power limit: watts per GPU, the speed it keeps, the PSU and wall draw, the chosen circuit."""
    watts = cap["watts_per_gpu"]
    limit = f"{watts[0]} W per GPU" if len(set(watts)) == 1 else ", ".join(f"{w} W" for w in watts)
    speeds = ", ".join(
        f"{phase} ×{cap[f'{phase}_speed_factor']:.2f}"
        if cap[f"{phase}_speed_factor"] is not None
        else f"{phase} unknown"
        for phase in ("decode", "prefill", "training")
    )
    supply = (f"{cap['psu_watts']:,} W{per_node}" if cap["psu_watts"] is not None else "built-in supply") + (
        f" / {cap['wall_watts']:,} W" if cap["wall_watts"] is not None else ""
    )
    rows = [
        ["power limit", f"{cap['fraction']:.0%} = {limit}"],
        ["  speed at that limit", speeds],
        ["  PSU / wall at that limit", supply],
    ]
    if cap.get("set_by_you") and cap.get("circuits") and circuit:
        rows.append([f"  circuit {circuit} at that limit", _circuit_cell(cap["circuits"][circuit])])
    return rows


#: Shares of the top power limit the curve is shown at.
CURVE_SHARES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)


def _curve_points(curves: dict[str, Any]) -> dict[str, Any]:
    return {
        phase: {
            "knee": c.knee,
            "sharpness": c.sharpness,
            "fitted_on": f"{c.rows} points of {c.sweeps} published sweeps (power_limit_sweeps.csv)",
            "mape": c.mape,
            "retention": {f"{share:.0%}": round(c.retention(share), 3) for share in CURVE_SHARES},
        }
        for phase, c in curves.items()
    }


def _render_curve(curves: dict[str, Any]) -> None:
    con = console()
    phases = sorted(curves)
    rows = [[f"{share:.0%}", *(f"{curves[p].retention(share):.0%}" for p in phases)] for share in CURVE_SHARES]
    con.print(table("speed at a power limit", ["limit", *phases], rows, right={1, 2}))
    fitted = "; ".join(f"{p}: {curves[p].sweeps} sweeps, MAPE {curves[p].mape:.1%}" for p in phases)
    con.print(f"fitted to published llama.cpp/vLLM power-limit sweeps ({fitted})")


@app.command("power")
def power_cmd(
    rig: Annotated[str, typer.Argument(help="Rig: 'rtx-4090', '2x rtx-3090', '8x h100-sxm'.")],
    circuit: CircuitOpt = None,
    kwh_price: KwhOpt = None,
    power_limit: PowerLimitOpt = None,
    platform: PowerPlatformOpt = None,
    model: PowerModelOpt = None,
    quant: PowerQuantOpt = None,
    engine: PowerEngineOpt = "llama.cpp",
    json: JsonOpt = False,
) -> None:
    """PSU size, power leads, wall circuits, a power limit's speed cost and the electricity
    bill for a rig.

    Exit status: 0, or 1 when --circuit cannot carry the machine.

    Example: rigplan power '2x rtx-4090' --circuit 120v15a --kwh-price 0.30 --model llama-3-70b
    """
    from .. import power_report

    circuit = circuit.lower() if circuit else None
    report = power_report(
        rig,
        platform=platform,
        circuit=circuit,
        power_limit=power_limit,
        kwh_price=kwh_price,
        model=model,
        quant=quant,
        engine=engine,
    )
    from .. import load_power_curves

    curves = load_power_curves()
    if json:
        print_json({**report.to_dict(), "power_curve": _curve_points(curves)})
    else:
        render_power(report)
        _render_curve(curves)
    raise typer.Exit(0 if report.circuit_fits else 1)
