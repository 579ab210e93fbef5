"""A plan's reasons in words: why each pick wins, when to avoid it, the next step up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..planner import Plan, Reason
from ..units import format_gib, format_rate, format_usd


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _cost(f: Reason) -> str:
    return format_usd(f["cost_usd"]) + ("" if f["cost_complete"] else " + platform (price unknown)")


def _rank(f: Reason) -> str:
    rank, n, cost = f["rank"], f["of"], _cost(f)
    objective = f["objective"]
    if objective == "cheapest":
        if rank == 1:
            return f"Cheapest of {n} qualifying rig{'s' if n > 1 else ''}: {cost}."
        if f["cost_usd"] is not None and f["first_cost_usd"] is not None:
            more = format_usd(f["cost_usd"] - f["first_cost_usd"])
            return f"{_ordinal(rank)} cheapest: {cost}, {more} more than the first."
        return f"{_ordinal(rank)} of {n}: {cost}."
    if objective == "fastest":
        lead = "Fastest" if rank == 1 else f"{_ordinal(rank)} fastest"
        return f"{lead} of {n}: {format_rate(f['decode_tokens_per_s'])} per user for {cost}."
    if objective == "value":
        v = f["tokens_per_s_per_usd"]
        return (
            f"{'Best' if rank == 1 else _ordinal(rank) + ' best'} value of {n}: "
            + (f"{v * 1000:.1f} tok/s per $1,000" if v else "value unknown")
            + f" ({cost})."
        )
    e = f["tokens_per_joule"]
    return (
        f"{'Most' if rank == 1 else _ordinal(rank) + ' most'} efficient of {n}: "
        + (f"{e:.3f} tokens per joule at the wall" if e else "efficiency unknown")
        + f" ({cost})."
    )


def _memory(f: Reason) -> str:
    gpus = f["gpus"]
    line = (
        f"{f['model']} at {f['quant']} is {format_gib(f['weights_bytes'])} of weights; on {gpus} "
        f"GPU{'s' if gpus > 1 else ''} the fullest holds {format_gib(f['fullest_bytes'])} of "
        f"{format_gib(f['fullest_usable_bytes'])} ({f['fullest_share']:.0%})"
    )
    spare = f["spare_context_tokens"]
    if f["kv_pool_tokens"] is not None:
        line += (
            f"; the KV pool keeps {f['kv_pool_tokens']:,} tokens = {f['max_concurrent_sequences']} sequences of "
            f"{f['context']:,}"
        )
    elif spare is not None and spare > 0:
        line += f", room for ~{spare:,} more tokens of context per user"
    return line + "."


def _speed(f: Reason) -> str:
    rng = f["decode_tokens_per_s_range"]
    text = f"Decodes ~{format_rate(f['decode_tokens_per_s'])} per user"
    if rng:
        text += f" ({rng[0]:.3g}–{rng[1]:.3g})"
    if f["users"] > 1 and f["decode_throughput_tokens_per_s"]:
        text += f", {format_rate(f['decode_throughput_tokens_per_s'])} for {f['users']} users"
    if f["ttft_s"] is not None:
        text += f"; first token in {f['ttft_s']:.2f} s"
    return text + f" ({f['engine_profile']})."


def _power(f: Reason) -> str:
    conn = ", ".join(f"{v}x {k}" for k, v in f["connectors"].items())
    units, watts = f["psu_units"], f["psu_watts"]
    psu = f"{units}x {watts // units} W" if units > 1 else f"a {watts:,} W"
    where = {
        "120v15a": "one 120 V/15 A circuit carries it",
        "120v20a-or-230v": f"over a 120 V/15 A circuit's {f['circuit_120v15a_watts']:,} W: use 120 V/20 A or 230 V",
        None: "needs several circuits",
    }[f["circuit"]]
    return (
        f"{f['board_watts']:,} W of GPUs (~{f['draw_watts']:,} W while decoding); {psu} ATX 3.x PSU"
        + (f" with {conn}" if conn else "")
        + f"; {f['wall_watts']:,} W at the wall at full load, {where}"
        + (" per node" if f["nodes"] > 1 else "")
        + "."
    )


def _platform(f: Reason) -> str:
    return f"{f['platform']}: PCIe {f['pcie_generation']}.0 x{f['lanes_per_gpu']} per GPU, {f['nvlink']}" + (
        " (layer split passes only activations between GPUs, so lanes matter little)." if f["layer_split"] else "."
    )


def _electricity(f: Reason) -> str:
    return (
        f"Electricity: ${f['usd_per_million_tokens']:,.2f} per million tokens "
        f"(${f['usd_per_hour']:,.2f} an hour at ~{f['workload_wall_watts']:,} W)."
    )


_WHY: dict[str, Callable[[Reason], str]] = {
    "rank": _rank,
    "memory": _memory,
    "speed": _speed,
    "power": _power,
    "platform": _platform,
    "electricity": _electricity,
}


def why_text(reason: Reason) -> str:
    """One "why" sentence."""
    return _WHY[reason.code](reason)


def _tight(f: Reason) -> str:
    spare = f["spare_context_tokens"]
    more = f"more than ~{spare:,} extra tokens of context" if spare is not None else "more context or users"
    return f"you need {more}: the fullest GPU is {f['fullest_share']:.0%} full."


_AVOID: dict[str, Callable[[Reason], str]] = {
    "kv_pool_full": lambda f: (
        f"you need more than {f['max_concurrent_sequences']} users at {f['context']:,} tokens of "
        "context: the KV pool holds no more."
    ),
    "memory_tight": _tight,
    "used_price": lambda f: f"you want a warranty: {f['item']} is priced used (as of {f['as_of']}).",
    "platform_price_unknown": lambda f: (
        f"you need a full quote: the {f['platform']} price is unknown (the cost covers GPUs and PSU only)."
    ),
    "stale_launch_price": lambda f: (
        f"you need today's price: {f['gpu']} is priced at its {f['launch_year']} launch price."
    ),
    "passive_cooling": lambda f: "you lack a server chassis with forced airflow: these cards are passively cooled.",
    "needs_risers": lambda f: "your case cannot take risers or an open frame: the cards do not fit side by side.",
    "poor_airflow": lambda f: "your case has poor airflow: several open-air cards heat each other.",
    "over_120v15a": lambda f: f"you only have a 120 V/15 A circuit: it draws {f['wall_watts']:,} W at the wall.",
    "no_p2p": lambda f: (
        "you want full tensor-parallel speed: these cards have no PCIe P2P on the stock driver "
        "(all-reduce goes through host memory)."
    ),
    "apple": lambda f: "you need CUDA engines (vLLM, ExLlamaV2) or fine-tuning speed.",
}


def avoid_text(reason: Reason) -> str:
    """One "avoid if" sentence."""
    return _AVOID[reason.code](reason)


def next_step_text(reason: Reason) -> str:
    """The next step up in one sentence."""
    gains = []
    if reason["extra_memory_gib"] > 0:
        gains.append(f"{reason['extra_memory_gib']:.0f} GiB more GPU memory")
    if reason["speedup"]:
        gains.append(f"{reason['speedup']:.1f}× the decode speed")
    return (
        f"{reason['rig']} ({reason['quant']}, {reason['engine']}) for {format_usd(reason['cost_usd'])} "
        f"(+{format_usd(reason['extra_usd'])}) buys " + (" and ".join(gains) or "more headroom") + "."
    )


def plan_dict(plan: Plan) -> dict[str, Any]:
    """``plan.to_dict()`` with each recommendation's reasons in words (``why``, ``avoid_if``,
    ``next_step``): the JSON of ``rigplan plan --json`` and of the web API."""
    d = plan.to_dict()
    for rec, out in zip(plan.recommendations, d["recommendations"], strict=True):
        out["why"] = [why_text(x) for x in rec.why]
        out["avoid_if"] = [avoid_text(x) for x in rec.avoid_if]
        out["next_step"] = next_step_text(rec.next_step) if rec.next_step else None
    return d
