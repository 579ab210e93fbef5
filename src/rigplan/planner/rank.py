"""Rank what qualified by the objective, keep the best per rig, and find the nearest miss."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..catalog.records import Model
from ..core import Context, evaluate
from ..errors import RigplanError
from ..requests import InferenceRequest
from .records import NearestMiss, Recommendation
from .sweep import Sweep


def tokens_per_s_per_usd(r: Recommendation) -> float | None:
    t = r.throughput_tokens_per_s
    return t / r.cost_usd if t and r.cost_usd else None


def tokens_per_joule(r: Recommendation) -> float | None:
    t = r.throughput_tokens_per_s
    return t / r.power.workload_wall_watts if t and r.power.workload_wall_watts else None


def rank_key(objective: str) -> Callable[[Recommendation], tuple[Any, ...]]:
    def cost(r: Recommendation) -> tuple[bool, bool, float]:
        # Unpriced rigs last; rigs whose platform has no price after fully priced ones (their
        # cost is only part of the bill).
        return (r.cost_usd is None, not r.cost_complete, r.cost_usd or 0.0)

    def bits(r: Recommendation) -> float:
        return -r.quant.bits_per_weight

    def speed(r: Recommendation) -> float:
        return -(r.decode_tokens_per_s or 0.0)

    if objective == "fastest":
        return lambda r: (r.decode_tokens_per_s is None, speed(r), *cost(r), bits(r))
    if objective == "value":
        return lambda r: (
            tokens_per_s_per_usd(r) is None,
            not r.cost_complete,
            -(tokens_per_s_per_usd(r) or 0.0),
            *cost(r),
            bits(r),
        )
    if objective == "efficiency":
        return lambda r: (tokens_per_joule(r) is None, -(tokens_per_joule(r) or 0.0), *cost(r), bits(r))
    return lambda r: (*cost(r), bits(r), speed(r))


#: Unverified misses (excluded before an estimate) re-checked for memory when nothing qualifies.
NEAREST_MISS_CHECKS = 12


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


def best_per_rig(
    recs: Sequence[Recommendation], key: Callable[[Recommendation], tuple[Any, ...]]
) -> list[Recommendation]:
    best: dict[str, Recommendation] = {}
    for r in sorted(recs, key=key):
        best.setdefault(r.rig.describe(), r)
    return sorted(best.values(), key=key)
