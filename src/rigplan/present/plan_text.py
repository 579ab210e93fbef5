"""A plan's picks in words: why each wins, when to avoid it, the next step up.

Every sentence is built from the pick's numbers (estimate, power, platform, cost lines) and the
plan's own record (objective, context, users, the ranked list); nothing is recomputed here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ..engines import VLLM, get_engine
from ..expert_offload import describe_host_part
from ..planner.rank import fullest_gpu, next_step_up, spare_context, tokens_per_joule, tokens_per_s_per_usd
from ..planner.records import SPEED_BASIS_PER_USER, Plan, Recommendation
from ..results import per_user_speed
from ..units import GIB, format_gib, format_rate, format_usd

#: A GPU whose fullest memory is above this share is flagged: little room for more context.
TIGHT_MEMORY_SHARE = 0.9
#: A pooled engine whose KV pool holds fewer than this many times the users asked for is flagged.
POOL_HEADROOM = 2
#: A launch price older than this (years before the price's date) is flagged as likely stale.
STALE_LAUNCH_YEARS = 3


@dataclass(frozen=True, slots=True)
class Setting:
    """What the plan was asked (the facts the sentences need besides the pick's own)."""

    objective: str
    context: int
    users: int
    min_tokens_per_s: float | None = None

    @classmethod
    def of(cls, plan: Plan) -> Setting:
        c = plan.constraints
        floor = c.get("min_tokens_per_s")
        return cls(plan.objective, int(c["context"]), int(c["users"]), None if floor is None else float(floor))


def _speed_words(r: Recommendation) -> str:
    """What ``r``'s speed (``Recommendation.speed``, the one ranked) is, in words."""
    return "the per-user speed (prompts included)" if r.speed_basis == SPEED_BASIS_PER_USER else "the decode speed"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _rank_line(r: Recommendation, rank: int, ranked: Sequence[Recommendation], objective: str) -> str:
    first = ranked[0]
    n = len(ranked)
    cost = format_usd(r.cost_usd) + ("" if r.cost_complete else " + platform (price unknown)")
    speed = r.speed_tokens_per_s
    if objective == "cheapest" or speed is None:
        if rank == 1:
            return f"Cheapest of {n} qualifying rig{'s' if n > 1 else ''}: {cost}."
        if r.cost_usd is not None and first.cost_usd is not None:
            return f"{_ordinal(rank)} cheapest: {cost}, {format_usd(r.cost_usd - first.cost_usd)} more than the first."
        return f"{_ordinal(rank)} of {n}: {cost}."
    if objective == "fastest":
        lead = "Fastest" if rank == 1 else f"{_ordinal(rank)} fastest"
        prompts = ", prompts included," if r.speed_basis == SPEED_BASIS_PER_USER else ""
        return f"{lead} of {n}: {format_rate(speed)} per user{prompts} for {cost}."
    if objective == "value":
        v = tokens_per_s_per_usd(r)
        return (
            f"{'Best' if rank == 1 else _ordinal(rank) + ' best'} value of {n}: "
            + (f"{v * 1000:.1f} tok/s per $1,000" if v else "value unknown")
            + f" ({cost})."
        )
    e = tokens_per_joule(r)
    return (
        f"{'Most' if rank == 1 else _ordinal(rank) + ' most'} efficient of {n}: "
        + (f"{e:.3f} tokens per joule at the wall" if e else "efficiency unknown")
        + f" ({cost})."
    )


def _memory_lines(r: Recommendation, at: Setting) -> list[str]:
    m = r.estimate.model
    share, total, usable = fullest_gpu(r)
    mem = r.estimate.memory
    gpus = r.rig.gpu_count
    line = (
        f"{m.id} at {r.quant.id} is {format_gib(mem.weights_bytes)} of weights; on {gpus} GPU{'s' if gpus > 1 else ''} "
        f"the fullest holds {format_gib(total)} of {format_gib(usable)} ({share:.0%})"
    )
    spare = spare_context(r, at.context, at.users)
    if mem.kv_pool_tokens is not None:
        line += (
            f"; the KV pool keeps {mem.kv_pool_tokens:,} tokens = {mem.max_concurrent_sequences} sequences of "
            f"{at.context:,}"
        )
    ram = next((c for c in r.cost_items if c.kind == "ram"), None)
    if mem.kv_pool_tokens is None and spare is not None and spare > 0 and ram is None:
        line += f", room for ~{spare:,} more tokens of context per user"
    out = [line + "."]
    if mem.host_bytes and ram is not None:
        out.append(describe_host_part(r.estimate, ram.item))
    return out


def _speed_line(r: Recommendation, at: Setting) -> str | None:
    s = r.estimate.speed
    if s.decode_tokens_per_s is None:
        return None
    rng = s.decode_tokens_per_s_range
    text = f"Decodes ~{format_rate(s.decode_tokens_per_s)} per user"
    if rng:
        text += f" ({rng[0]:.3g}–{rng[1]:.3g})"
    if at.users > 1 and s.decode_throughput_tokens_per_s:
        text += f", {format_rate(s.decode_throughput_tokens_per_s)} for {at.users} users"
    steady, steady_rng = per_user_speed(r.estimate)
    if at.users > 1 and steady is not None:
        text += f"; each user streams ~{format_rate(steady)}"
        if steady_rng:
            text += f" ({steady_rng[0]:.3g}–{steady_rng[1]:.3g})"
        text += " with the other users' prompts prefilled (what --min-tok-s checks)"
    if s.ttft_s is not None:
        text += f"; first token in {s.ttft_s:.2f} s"
        if at.users > 1:
            text += f" when all {at.users} prompts arrive at once"
    return text + f" ({s.engine_profile})."


def _power_line(r: Recommendation) -> str | None:
    p = r.power
    if p.psu_watts is None:
        return None
    conn = ", ".join(f"{v}x {k}" for k, v in p.connectors.items())
    psu = f"{p.psu_units}x {p.psu_watts // p.psu_units} W" if p.psu_units > 1 else f"a {p.psu_watts:,} W"
    circ = p.circuits["120v15a"]
    where = (
        "one 120 V/15 A circuit carries it"
        if circ.fits
        else f"over a 120 V/15 A circuit's {circ.capacity_watts:,} W: use 120 V/20 A or 230 V"
        if p.circuits["120v20a"].fits or p.circuits["230v16a"].fits
        else "needs several circuits"
    )
    return (
        f"{p.board_watts:,} W of GPUs (~{p.draw_watts:,} W while decoding); {psu} ATX 3.x PSU"
        + (f" with {conn}" if conn else "")
        + f"; {p.wall_watts:,} W at the wall at full load, {where}"
        + (" per node" if p.nodes > 1 else "")
        + "."
    )


def _platform_line(r: Recommendation) -> str | None:
    fit = r.platform
    if fit is None:
        return None
    layer_split = r.estimate.memory.placement.split == "layer" and r.rig.gpu_count > 1
    link = f"PCIe {fit.pcie_generation}.0 x{fit.lanes_per_gpu} per GPU, {fit.nvlink.describe()}"
    note = " (layer split passes only activations between GPUs, so lanes matter little)." if layer_split else "."
    return f"{fit.platform.name}: {link}{note}"


def _energy_line(r: Recommendation) -> str | None:
    if r.energy_usd_per_million_tokens is None:
        return None
    return (
        f"Electricity: ${r.energy_usd_per_million_tokens:,.2f} per million tokens "
        f"(${r.energy_usd_per_hour:,.2f} an hour at ~{r.power.workload_wall_watts:,} W)."
    )


#: How a standout is named in the table and in its "why" (``Recommendation.best_by``).
STANDOUT_NAMES = {"value": "best value", "fastest": "fastest"}


def standout_label(r: Recommendation) -> str:
    """ "best value", "fastest", "best value, fastest" or "" for a pick that is no standout."""
    return ", ".join(STANDOUT_NAMES.get(o, o) for o in r.best_by)


def _standout_lines(r: Recommendation, ranked: Sequence[Recommendation], at: Setting) -> list[str]:
    """What a standout is best at.  A cheapest-first sweep estimates each rig's widest quant and
    stops at the fewest GPUs that fit, so there the claim covers only what it estimated."""
    scope = " of the configurations estimated" if at.objective == "cheapest" else " of the qualifying rigs"
    lines = [_rank_line(r, 1, ranked, objective).replace(f" of {len(ranked)}", scope, 1) for objective in r.best_by]
    if lines and at.objective == "cheapest":
        lines[-1] = lines[-1][:-1] + f" (--objective {r.best_by[-1]} also tries narrower quants and more GPUs)."
    return lines


def why(r: Recommendation, rank: int, ranked: Sequence[Recommendation], at: Setting) -> list[str]:
    """Why the ``rank``-th pick (1-based) of ``ranked`` wins: rank, memory, speed, power, platform,
    energy; a standout also says what it is best at (among every qualifying configuration)."""
    lines = [_rank_line(r, rank, ranked, at.objective), *_standout_lines(r, ranked, at), *_memory_lines(r, at)]
    optional = (_speed_line(r, at), _power_line(r), _platform_line(r), _energy_line(r))
    return lines + [line for line in optional if line is not None]


def _memory_caveat(r: Recommendation, at: Setting) -> list[str]:
    share, _, _ = fullest_gpu(r)
    mem = r.estimate.memory
    if mem.max_concurrent_sequences is not None:
        # A pooled engine claims its whole share of memory; what matters is how many sequences fit.
        if mem.max_concurrent_sequences < POOL_HEADROOM * at.users:
            return [
                f"you need more than {mem.max_concurrent_sequences} users at {at.context:,} tokens of "
                "context: the KV pool holds no more."
            ]
    elif share >= TIGHT_MEMORY_SHARE:
        spare = spare_context(r, at.context, at.users)
        more = f"more than ~{spare:,} extra tokens of context" if spare is not None else "more context or users"
        return [f"you need {more}: the fullest GPU is {share:.0%} full."]
    return []


def _speed_caveat(r: Recommendation, at: Setting) -> list[str]:
    """A pick qualifies on its estimate; say so when the range of its speed (the one the table
    shows: per user with prompts for several users) reaches under the speed asked."""
    rng = r.speed[1]
    if at.min_tokens_per_s is None or rng is None or rng[0] >= at.min_tokens_per_s:
        return []
    return [
        f"{at.min_tokens_per_s:g} tok/s per user is a hard floor: the estimate clears it but its range "
        f"reaches down to {rng[0]:.3g}."
    ]


def _price_caveats(r: Recommendation) -> list[str]:
    out = []
    for c in r.cost_items:
        if c.kind == "used":
            out.append(f"you want a warranty: {c.item} is priced used (as of {c.as_of}).")
        elif c.kind == "unknown" and c.item.startswith("platform"):
            out.append(
                f"you need a full quote: the {c.item.removeprefix('platform ')} price is unknown "
                "(the cost covers GPUs and PSU only)."
            )
        elif c.kind == "launch":
            gpu = next((g for g in r.rig.gpus if c.item.endswith(g.id)), None)
            if gpu and c.as_of and int(c.as_of[:4]) - gpu.launch_year >= STALE_LAUNCH_YEARS:
                out.append(f"you need today's price: {gpu.id} is priced at its {gpu.launch_year} launch price.")
    return out


def _hardware_caveats(r: Recommendation) -> list[str]:
    out = []
    if any(g.cooling == "passive" for g in r.rig.gpus):
        out.append("you lack a server chassis with forced airflow: these cards are passively cooled.")
    fit = r.platform
    if fit is not None and fit.needs_risers:
        out.append("your case cannot take risers or an open frame: the cards do not fit side by side.")
    if fit is not None and any("recirculate" in n for n in fit.notes):
        out.append("your case has poor airflow: several open-air cards heat each other.")
    p = r.power
    if not p.circuits["120v15a"].fits:
        out.append(f"you only have a 120 V/15 A circuit: it draws {p.circuits['120v15a'].wall_watts:,} W at the wall.")
    if (
        get_engine(r.engine).family == VLLM
        and r.rig.gpus_per_node > 1
        and not all(g.p2p_stock_driver for g in r.rig.gpus)
        and (fit is None or fit.nvlink.kind == "none")
    ):
        out.append(
            "you want full tensor-parallel speed: these cards have no PCIe P2P on the stock driver "
            "(all-reduce goes through host memory)."
        )
    if any(g.is_apple for g in r.rig.gpus):
        out.append("you need CUDA engines (vLLM, ExLlamaV2) or fine-tuning speed.")
    return out


def avoid_if(r: Recommendation, at: Setting) -> list[str]:
    """When not to buy the pick: tight memory, a speed floor the range dips under, used or stale
    prices, cooling, risers, circuits, P2P."""
    return [*_memory_caveat(r, at), *_speed_caveat(r, at), *_price_caveats(r), *_hardware_caveats(r)]


def next_step(r: Recommendation, pool: Sequence[Recommendation]) -> str | None:
    """The next step up (:func:`rigplan.planner.rank.next_step_up`) and what it buys, in words."""
    o = next_step_up(r, pool)
    if o is None or r.cost_usd is None:
        return None
    gains = []
    extra_mem = sum(g.memory_bytes for g in o.rig.all_gpus) - sum(g.memory_bytes for g in r.rig.all_gpus)
    if extra_mem > 0:
        gains.append(f"{extra_mem / GIB:.0f} GiB more GPU memory")
    if o.speed_tokens_per_s and r.speed_tokens_per_s:
        gains.append(f"{o.speed_tokens_per_s / r.speed_tokens_per_s:.1f}× {_speed_words(r)}")
    return (
        f"{o.rig.describe()} ({o.quant.id}, {o.engine}) for {format_usd(o.cost_usd)} "
        f"(+{format_usd((o.cost_usd or 0) - r.cost_usd)}) buys " + (" and ".join(gains) or "more headroom") + "."
    )


#: How ``Recommendation.best_by`` objectives are named next to a rig.
BEST_BY_WORDS = {"value": "best value", "fastest": "fastest"}


def standout(r: Recommendation) -> str | None:
    """The objectives under which ``r`` is the best qualifying rig, in words (None: none)."""
    return ", ".join(BEST_BY_WORDS.get(o, o) for o in r.best_by) or None


def explain_plan(plan: Plan) -> Plan:
    """``plan`` with each pick's (and each standout's) ``why``, ``avoid_if``, ``next_step`` and
    ``standout`` filled in."""
    at = Setting.of(plan)
    ranked = plan.ranked or plan.recommendations

    def explained(r: Recommendation, rank: int) -> Recommendation:
        return dataclasses.replace(
            r,
            why=tuple(why(r, rank, ranked, at)),
            avoid_if=tuple(avoid_if(r, at)),
            next_step=next_step(r, ranked),
            standout=standout(r),
        )

    picks = tuple(explained(r, r.rank or i + 1) for i, r in enumerate(plan.recommendations))
    also = tuple(explained(r, r.rank) for r in plan.also)
    return dataclasses.replace(plan, recommendations=picks, also=also)
