"""``rigplan plan`` and ``rigplan power``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import format_gib, format_rate, format_usd
from . import app
from .output import console, print_json, table

if TYPE_CHECKING:
    from .. import Plan, PowerReport

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
CircuitOpt = Annotated[
    str | None, typer.Option(help="Wall circuit that must carry the machine: 120v15a, 120v20a, 230v10a or 230v16a.")
]
KwhOpt = Annotated[float | None, typer.Option("--kwh-price", help="Electricity price per kWh, for the cost of tokens.")]


def _speed(d: dict[str, Any]) -> str:
    s = d["estimate"]["speed"]
    value, rng = s["decode_tokens_per_s"], s["decode_tokens_per_s_range"]
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
        con.print("No rig meets every constraint.")
        if d["excluded"]:
            con.print("excluded: " + ", ".join(f"{k} {v:,}" for k, v in d["excluded"].items()))
        miss = d["nearest_miss"]
        if miss:
            con.print(
                f"nearest miss: {miss['rig']} ({miss['quant']}, {miss['engine']}, {format_usd(miss['cost_usd'])}) — "
                + "; ".join(miss["failed"])
            )
        return
    rows = []
    for i, r in enumerate(recs, 1):
        ttft = r["estimate"]["speed"]["ttft_s"]
        rows.append(
            [
                str(i),
                r["rig"],
                f"{r['quant']} · {r['engine']}",
                _fullest(r),
                _speed(r),
                "—" if ttft is None else f"{ttft:.2f} s",
                str(r["users_served"] if r["users_served"] is not None else "—"),
                _cost(r),
                _power_cell(r),
            ]
        )
    con.print(
        table(
            None,
            ["#", "rig", "quant · engine", "fullest GPU", "decode tok/s", "first token", "users", "cost", "power"],
            rows,
            right={0, 4, 5, 6, 7},
        )
    )
    for i, r in enumerate(recs, 1):
        con.print(f"\n{i}. {r['rig']} — {r['quant']} on {r['engine']}, {_cost(r)}")
        for line in r["why"]:
            con.print(f"   why: {line}")
        for line in r["avoid_if"]:
            con.print(f"   avoid if {line}")
        if r["next_step"]:
            con.print(f"   next step up: {r['next_step']}")
        prices = [
            f"{x['item']} {format_usd(x['usd'])} ({x['kind']}{', ' + x['as_of'] if x['as_of'] else ''})"
            for x in r["cost"]
        ]
        con.print("   cost: " + "; ".join(prices))


@app.command("plan")
def plan_cmd(
    model: Annotated[
        str,
        typer.Argument(help="Catalogue id (rigplan models), a config.json / .gguf path, or a Hugging Face repo id."),
    ],
    quant: Annotated[str, typer.Option(help="'any' (4 bits and up), 4bit/8bit/16bit, or a quant id.")] = "any",
    context: Annotated[
        int | None, typer.Option(help="Tokens of context per user (default 4096, capped at the model's).")
    ] = None,
    users: Annotated[int, typer.Option(help="Users served at once, each with the full context.")] = 1,
    min_tokens_per_s: Annotated[
        float | None, typer.Option("--min-tokens-per-s", "--min-tok-s", help="Output speed each user must get.")
    ] = None,
    budget: Annotated[float | None, typer.Option(help="Whole-rig budget in USD (GPUs, platform, PSU).")] = None,
    max_watts: Annotated[float | None, typer.Option("--max-watts", help="Limit on the machine's rated draw.")] = None,
    circuit: CircuitOpt = None,
    max_gpus: Annotated[int | None, typer.Option("--max-gpus", help="Most GPUs in the rig.")] = None,
    gpu_class: Annotated[
        str | None, typer.Option("--class", help="GPU class: consumer, workstation, datacenter or apple.")
    ] = None,
    platform: Annotated[str | None, typer.Option(help="Platform class: desktop, hedt or server.")] = None,
    nvlink: Annotated[bool, typer.Option("--nvlink", help="Only rigs whose GPUs all share NVLink.")] = False,
    have: Annotated[
        list[str] | None, typer.Option(help="GPUs you already own ('rtx-3090', '2x rtx-3090'); repeat.")
    ] = None,
    engine: Annotated[str | None, typer.Option(help="One engine (default: llama.cpp, vllm and exllamav2).")] = None,
    objective: Annotated[
        str,
        typer.Option(
            help="cheapest, fastest, value (tok/s per $) or efficiency (tokens per joule); with --task: cheapest "
            "(buy the whole machine), rent (same GPUs on demand) or fastest."
        ),
    ] = "cheapest",
    top: Annotated[int, typer.Option(help="How many rigs to show.")] = 5,
    price: Annotated[
        list[str] | None, typer.Option(help="Your price for a GPU, GPU=USD (e.g. rtx-3090=700); repeat.")
    ] = None,
    kwh_price: KwhOpt = None,
    used: Annotated[bool, typer.Option("--used", help="Buy GPUs used where a used price is sourced.")] = False,
    new: Annotated[bool, typer.Option("--new", help="Buy GPUs new (street, else launch price).")] = False,
    include_discontinued: Annotated[
        bool, typer.Option("--include-discontinued", help="Also plan parts withdrawn from sale.")
    ] = False,
    task: Annotated[
        str | None,
        typer.Option(help="Plan training instead of inference: lora, qlora, full or pretrain."),
    ] = None,
    tokens: Annotated[
        str | None, typer.Option(help="Training tokens with --task (e.g. 1e9, 500M); default one epoch guess.")
    ] = None,
    deadline: Annotated[str | None, typer.Option(help="Longest training time with --task (e.g. 24h, 3d).")] = None,
    seq_len: Annotated[int, typer.Option("--seq-len", help="Training sequence length with --task.")] = 2048,
    allow_offload: Annotated[
        bool, typer.Option("--allow-offload", help="With --task: allow optimizer offload to CPU RAM.")
    ] = False,
    no_user_calibration: Annotated[
        bool,
        typer.Option(
            "--no-user-calibration", help="Ignore your `rigplan calibrate` results: the plan any machine would print."
        ),
    ] = False,
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
    from .. import InvalidValueError

    mode_flags = (
        {
            "--tokens": tokens is not None,
            "--deadline": deadline is not None,
            "--seq-len": seq_len != 2048,
            "--allow-offload": allow_offload,
        }
        if task is None
        else {
            "--engine": engine is not None,
            "--users": users != 1,
            "--min-tokens-per-s": min_tokens_per_s is not None,
            "--price": bool(price),
            "--nvlink": nvlink,
            "--circuit": circuit is not None,
            "--max-watts": max_watts is not None,
            "--platform": platform is not None,
        }
    )
    if used and new:
        raise InvalidValueError("used", "--used and --new exclude each other")
    unused = [flag for flag, given in mode_flags.items() if given]
    if unused:
        mode = "with --task" if task is not None else "without --task"
        raise InvalidValueError(unused[0].lstrip("-"), f"{', '.join(unused)} has no effect {mode}")
    if task is not None:
        from .train_cmds import training_plan_output

        training = training_plan_output(
            model,
            task=task,
            tokens=tokens,
            deadline=deadline,
            budget=budget,
            max_gpus=max_gpus,
            gpu_class=gpu_class,
            seq_len=seq_len,
            objective=objective,
            allow_offload=allow_offload,
            have=have,
            limit=top,
            json=json,
        )
        raise typer.Exit(0 if training.options else 1)

    from .. import load_user_catalog, parse_price_overrides, plan_rigs

    user_catalog = load_user_catalog()
    prices = parse_price_overrides(price or [], user_catalog)
    plan = _with_progress(
        lambda progress: plan_rigs(
            model,
            quant=quant,
            context=context,
            users=users,
            min_tokens_per_s=min_tokens_per_s,
            budget_usd=budget,
            max_watts=max_watts,
            circuit=circuit.lower() if circuit else None,
            max_gpus=max_gpus,
            gpu_class=gpu_class,
            platform=platform,
            nvlink=nvlink,
            have=have or (),
            engine=engine,
            objective=objective,
            top=top,
            prices=prices,
            kwh_price=kwh_price,
            use_user_calibration=not no_user_calibration,
            catalog=user_catalog,
            progress=progress,
            condition="used" if used else "new" if new else None,
            include_discontinued=include_discontinued,
        )
    )
    if json:
        print_json(plan.to_dict())
    else:
        render_plan(plan)
    raise typer.Exit(0 if plan.recommendations else 1)


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
    con = console()
    d = report.to_dict()
    p = d["power"]
    plat = d["platform"]
    con.print(
        f"{d['rig']}"
        + (
            f" in {plat['name']} (PCIe {plat['pcie_generation']}.0 x{plat['pcie_lanes_per_gpu']} per GPU, "
            f"{plat['nvlink']})"
            if plat
            else ""
        )
    )
    rows = [
        ["GPU board power", f"{p['board_watts']:,} W"],
        ["GPU draw (batch-1 decode)", f"~{p['draw_watts']:,} W"],
        ["machine, rated", f"{p['system_watts']:,} W DC, {p['wall_watts']:,} W at the wall"],
    ]
    if p["host"]:
        rows.append(["CPU + rest of platform", f"{p['host']['cpu_watts']} W + {p['host']['base_watts']} W"])
    per_node = " per node" if p["nodes"] > 1 else ""
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
    for name, c in p["circuits"].items():
        mark = "yes" if c["fits"] else f"no: {c['circuits_needed']} circuits"
        chosen = " ←" if name == d["circuit"] else ""
        rows.append(
            [
                f"circuit {name}{per_node}",
                f"{c['wall_watts']:,} of {c['continuous_capacity_watts']:,} W continuous: {mark}{chosen}",
            ]
        )
    cap = d["power_limit"]
    if cap:
        rows += [
            [
                "power limit",
                f"{cap['fraction']:.0%} = "
                + (
                    f"{cap['watts_per_gpu'][0]} W per GPU"
                    if len(set(cap["watts_per_gpu"])) == 1
                    else ", ".join(f"{w} W" for w in cap["watts_per_gpu"])
                ),
            ],
            [
                "  speed at that limit",
                ", ".join(
                    f"{phase} ×{cap[f'{phase}_speed_factor']:.2f}"
                    if cap[f"{phase}_speed_factor"] is not None
                    else f"{phase} unknown"
                    for phase in ("decode", "prefill", "training")
                ),
            ],
            [
                "  PSU / wall at that limit",
                (f"{cap['psu_watts']:,} W{per_node}" if cap["psu_watts"] is not None else "built-in supply")
                + (f" / {cap['wall_watts']:,} W" if cap["wall_watts"] is not None else ""),
            ],
        ]
        if cap.get("set_by_you") and cap.get("circuits") and d["circuit"]:
            c = cap["circuits"][d["circuit"]]
            mark = "yes" if c["fits"] else f"no: {c['circuits_needed']} circuits"
            rows.append(
                [
                    f"  circuit {d['circuit']} at that limit",
                    f"{c['wall_watts']:,} of {c['continuous_capacity_watts']:,} W continuous: {mark}",
                ]
            )
    if d["kwh_price"] is not None:
        rows.append(["electricity", f"${d['energy_usd_per_hour']:.2f} an hour at ~{p['workload_wall_watts']:,} W"])
        if d["energy_usd_per_million_tokens"] is not None:
            rows.append(
                [
                    "  per million tokens",
                    f"${d['energy_usd_per_million_tokens']:.2f} at {format_rate(d['tokens_per_s'])}",
                ]
            )
    con.print(table(None, ["", ""], rows))
    if plat and plat["notes"]:
        for note in plat["notes"]:
            con.print(f"note: {note}")


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
    power_limit: Annotated[
        str | None,
        typer.Option(
            "--power-limit", help="A cap to evaluate: 70%, 0.7 or watts per GPU (default: the suggested cap)."
        ),
    ] = None,
    platform: Annotated[
        str | None, typer.Option(help="Platform id (see platforms.toml) or class: desktop, hedt, server.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="A model, for tokens/s and the electricity per million tokens.")
    ] = None,
    quant: Annotated[str | None, typer.Option(help="Quant for --model (default: the engine's).")] = None,
    engine: Annotated[str, typer.Option(help="Engine for --model.")] = "llama.cpp",
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
