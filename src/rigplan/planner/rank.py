"""Order the qualifying rigs by the objective, keep the best per rig, pick the next step up,
and find the nearest miss when nothing qualifies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ..catalog.records import Model
from ..core import Context, evaluate
from ..errors import RigplanError
from ..requests import InferenceRequest
from .records import NearestMiss, Recommendation
from .sweep import Sweep

#: Unverified misses (excluded before an estimate) re-checked for memory when nothing qualifies.
NEAREST_MISS_CHECKS = 12
#: A pricier rig is a "next step up" when its speed (``Recommendation.speed``: decode for one user,
#: per user with prompts for several) is this much higher (5 %: beyond noise).
NEXT_STEP_SPEEDUP = 1.05
#: Objectives whose best rig a plan also shows when the table (top N by the plan's objective)
#: leaves it out: a buyer ranking by price still wants to see the best value and the fastest.
STANDOUT_OBJECTIVES = ("value", "fastest")


def tokens_per_s_per_usd(r: Recommendation) -> float | None:
    """Throughput per dollar (the "value" objective)."""
    t = r.throughput_tokens_per_s
    return t / r.cost_usd if t and r.cost_usd else None


def tokens_per_joule(r: Recommendation) -> float | None:
    """Throughput per watt at the wall (the "efficiency" objective)."""
    t = r.throughput_tokens_per_s
    return t / r.power.workload_wall_watts if t and r.power.workload_wall_watts else None


def rank_key(objective: str) -> Callable[[Recommendation], tuple[Any, ...]]:
    """The sort key of ``objective``; ties go to the cheaper rig, then the wider quant.  Speed is
    :attr:`Recommendation.speed`, the one a plan shows (per user, prompts included, for several users)."""

    def cost(r: Recommendation) -> tuple[bool, bool, float]:
        # Unpriced rigs last; rigs whose platform has no price after fully priced ones (their
        # cost is only part of the bill).
        return (r.cost_usd is None, not r.cost_complete, r.cost_usd or 0.0)

    def bits(r: Recommendation) -> float:
        return -r.quant.bits_per_weight

    def speed(r: Recommendation) -> float:
        return -(r.speed_tokens_per_s or 0.0)

    if objective == "fastest":
        return lambda r: (r.speed_tokens_per_s is None, speed(r), *cost(r), bits(r))
    if objective == "value":
        return lambda r: (
            tokens_per_s_per_usd(r) is None, not r.cost_complete, -(tokens_per_s_per_usd(r) or 0.0), *cost(r), bits(r)
        )  # fmt: skip
    if objective == "efficiency":
        return lambda r: (tokens_per_joule(r) is None, -(tokens_per_joule(r) or 0.0), *cost(r), bits(r))
    return lambda r: (*cost(r), bits(r), speed(r))


def best_per_rig(
    recs: Sequence[Recommendation], key: Callable[[Recommendation], tuple[Any, ...]]
) -> list[Recommendation]:
    """The best engine and quant of each rig, ordered by ``key``."""
    best: dict[str, Recommendation] = {}
    for r in sorted(recs, key=key):
        best.setdefault(r.rig.describe(), r)
    return sorted(best.values(), key=key)


def _scored(r: Recommendation, objective: str) -> bool:
    """Whether ``r`` can be a standout under ``objective``: a buyer can act only on a priced rig."""
    if objective == "value":
        return r.cost_complete and tokens_per_s_per_usd(r) is not None
    return r.cost_usd is not None and r.speed_tokens_per_s is not None


def standouts(recs: Sequence[Recommendation], objective: str) -> list[tuple[str, Recommendation]]:
    """(objective, its best configuration) for each of :data:`STANDOUT_OBJECTIVES` other than
    ``objective``, among every configuration that qualified (none where nothing has the score)."""
    out = []
    for other in STANDOUT_OBJECTIVES:
        pool = [r for r in recs if _scored(r, other)]
        if other != objective and pool:
            out.append((other, min(pool, key=rank_key(other))))
    return out


def _same(a: Recommendation, b: Recommendation) -> bool:
    return (a.rig_text, a.engine, a.quant.id, a.cost_usd) == (b.rig_text, b.engine, b.quant.id, b.cost_usd)


def with_standouts(
    chosen: Sequence[Recommendation],
    ranked: Sequence[Recommendation],
    found: Sequence[tuple[str, Recommendation]],
    key: Callable[[Recommendation], tuple[Any, ...]],
) -> tuple[tuple[Recommendation, ...], tuple[Recommendation, ...]]:
    """The picks numbered by rank and marked ``best_by`` where a standout is one of them, and the
    standouts the picks leave out, each with its true rank under the plan's objective (one more
    than the rigs that sort before it)."""
    picks = [replace(r, rank=i) for i, r in enumerate(chosen, 1)]
    also: list[Recommendation] = []
    for objective, s in found:
        i = next((i for i, r in enumerate(picks) if _same(r, s)), None)
        j = next((j for j, r in enumerate(also) if _same(r, s)), None)
        if i is not None:
            picks[i] = replace(picks[i], best_by=(*picks[i].best_by, objective))
        elif j is not None:
            also[j] = replace(also[j], best_by=(*also[j].best_by, objective))
        else:
            rank = 1 + sum(1 for o in ranked if o.rig_text != s.rig_text and key(o) < key(s))
            also.append(replace(s, rank=rank, best_by=(objective,)))
    return tuple(picks), tuple(sorted(also, key=lambda r: r.rank))


def fullest_gpu(r: Recommendation) -> tuple[float, int, int]:
    """(share used, bytes used, usable bytes) of the rig's fullest GPU."""
    d = max(r.estimate.memory.devices, key=lambda x: x.total_bytes / x.usable_bytes if x.usable_bytes else 9.0)
    return (d.total_bytes / d.usable_bytes if d.usable_bytes else 9.0), d.total_bytes, d.usable_bytes


def spare_context(r: Recommendation, context: int, users: int) -> int | None:
    """Extra tokens of context (per user) the fullest GPU still has room for (non-pooled engines)."""
    mem = r.estimate.memory
    if mem.kv_pool_tokens is not None:
        return None
    spare = None
    for d in mem.devices:
        if not d.kv_cache_bytes:
            continue
        per_token = d.kv_cache_bytes / (context * users)
        tokens = int((d.usable_bytes - d.total_bytes) / per_token) if per_token else None
        if tokens is not None:
            spare = tokens if spare is None else min(spare, tokens)
    return spare


def _memory_of(r: Recommendation) -> int:
    return sum(g.memory_bytes for g in r.rig.all_gpus)


def next_step_up(r: Recommendation, pool: Sequence[Recommendation]) -> Recommendation | None:
    """The cheapest pricier rig that is faster (or, without speeds, holds more), among rigs whose
    whole cost is known (a partly priced rig's price difference would mean nothing)."""
    if r.cost_usd is None:
        return None
    mem, speed = _memory_of(r), r.speed_tokens_per_s
    better = []
    for o in pool:
        if o.cost_usd is None or not o.cost_complete or o.cost_usd <= r.cost_usd:
            continue
        if o.rig.describe() == r.rig.describe():
            continue
        faster = (o.speed_tokens_per_s or 0) > speed * NEXT_STEP_SPEEDUP if speed else False
        if faster or (speed is None and _memory_of(o) > mem):
            better.append(o)
    if not better:
        return None
    return min(better, key=lambda x: (x.cost_usd or 0.0, -(x.speed_tokens_per_s or 0.0)))


def nearest_miss(sweep: Sweep, model: Model, core: Context) -> NearestMiss | None:
    """The miss with the fewest failed constraints, then the smallest shortfall — among those
    known to fit in memory (unverified ones are estimated now, a few at most)."""
    checks = 0
    for m in sorted(sweep.misses, key=lambda x: (x.failures, x.severity)):
        if m.rig is not None and m.estimate_kwargs is not None:
            if checks >= NEAREST_MISS_CHECKS:
                continue
            checks += 1
            try:
                sweep.estimated += 1
                if not evaluate(InferenceRequest(model, m.rig, **m.estimate_kwargs), core).fits:
                    continue
            except RigplanError:
                continue
        return NearestMiss(m.rig_text, m.quant, m.engine, m.cost, m.failed)
    return None
