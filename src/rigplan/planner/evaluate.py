"""Evaluate one rig: platform, cost and power checks first, then the core estimate for each
engine and quant; what qualifies becomes a :class:`Recommendation`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..catalog.records import Catalog
from ..core import evaluate
from ..engines import VLLM, get_engine
from ..errors import RigplanError
from ..memory import usable_capacity
from ..platforms import PlatformFit, choose_platform
from ..power import PowerEstimate, energy_cost_per_hour, energy_cost_per_million_tokens, estimate_power
from ..quant import Quant
from ..requests import InferenceRequest
from ..results import Estimate
from ..rig import Rig
from ..units import format_rate, format_usd
from .costing import rig_cost
from .ladders import Bounds, engine_runs_on, ladder, valid_tp
from .records import CostItem, Recommendation
from .sweep import UNKNOWN_PRICE_SEVERITY, Inputs, Sweep, over


@dataclass(frozen=True, slots=True)
class _Priced:
    """One rig with its platform, power budget and cost, before any estimate."""

    rig: Rig
    owned: int
    fit: PlatformFit | None
    power: PowerEstimate
    cost: float | None
    complete: bool
    items: tuple[CostItem, ...]
    common: dict[str, Any]


def _platform(
    rig: Rig, inputs: Inputs, catalog: Catalog, sweep: Sweep, n: int, prefer: str
) -> tuple[bool, PlatformFit | None]:
    """(whether some platform takes the rig, the platform); Apple machines are their own."""
    node = rig.gpus
    if any(g.is_apple for g in node):
        if inputs.platform_class not in (None, "desktop"):
            sweep.exclude("platform", n)
            return False, None
        return True, None
    fit, checked = choose_platform(
        node, catalog.platforms.values(), platform_class=inputs.platform_class, prefer=prefer
    )
    if fit is None:
        sweep.exclude("platform", n)
        reasons = sorted({p for f in checked for p in f.problems})
        sweep.miss(rig.describe(), "-", "-", None, [(f"no platform takes it: {'; '.join(reasons[:2])}", 1.0)])
        return False, None
    return True, fit


def _price(
    rig: Rig, owned: int, fit: PlatformFit | None, inputs: Inputs, catalog: Catalog, prices: Mapping[str, float]
) -> _Priced:
    """Platform link, power budget and cost of ``rig``."""
    link = lanes = None
    if fit is not None and all(g.form_factor == "pcie" for g in rig.gpus):
        link = "nvlink" if inputs.nvlink else f"pcie{fit.pcie_generation}"
        lanes = fit.lanes_per_gpu
    common = dict(
        context=inputs.context,
        batch=inputs.users,
        prompt_tokens=inputs.prompt_tokens,
        output_tokens=inputs.output_tokens,
        link=link,
        lanes=lanes,
    )
    power = estimate_power(rig, None, None, platform=fit.platform if fit else None, batch=inputs.users)
    cost, complete, items = rig_cost(rig, owned, fit, power, catalog, prices)
    return _Priced(rig, owned, fit, power, cost, complete, items, common)


def _cheap_failures(p: _Priced, inputs: Inputs) -> list[tuple[str, str, float]]:
    """Constraints known before an estimate: budget, watts, circuit (constraint, why, how far off)."""
    out: list[tuple[str, str, float]] = []
    budget = inputs.budget_usd
    if budget is not None:
        if p.cost is None:
            out.append(("price_unknown", "no sourced price for a GPU (give one with --price)", UNKNOWN_PRICE_SEVERITY))
        elif p.cost > budget:
            over_by = format_usd(p.cost - budget)
            why = f"costs {format_usd(p.cost)}, {over_by} over the {format_usd(budget)} budget"
            out.append(("budget", why, over(p.cost, budget)))
    watts = p.power.system_watts
    if inputs.max_watts is not None and watts > inputs.max_watts:
        why = f"needs {watts:,} W, over the {inputs.max_watts:,.0f} W limit"
        out.append(("max_watts", why, over(watts, inputs.max_watts)))
    if inputs.circuit is not None:
        check = p.power.circuits[inputs.circuit]
        if not check.fits:
            why = (
                f"draws {check.wall_watts:,} W at the wall, over the {check.capacity_watts:,} W "
                f"a {inputs.circuit} circuit carries continuously"
            )
            out.append(("circuit", why, over(check.wall_watts, check.capacity_watts)))
    return out


def _estimate(p: _Priced, engine: str, q: Quant, inputs: Inputs, bounds: Bounds, sweep: Sweep) -> Estimate | None:
    """The core estimate of one (engine, quant) on the rig, or None (counted as excluded)."""
    rig = p.rig
    eng = get_engine(engine)
    if not engine_runs_on(engine, rig.gpus):
        sweep.exclude("unsupported")
        return None
    if eng.family == VLLM and (rig.is_mixed or not valid_tp(inputs.model, rig.gpus_per_node)):
        sweep.exclude("unsupported")
        return None
    if bounds.need_bytes(q, engine) > sum(usable_capacity(g, eng) for g in rig.all_gpus):
        sweep.exclude("memory")
        return None
    try:
        sweep.estimated += 1
        request = InferenceRequest(inputs.model, rig, quant=q.id, engine=engine, **p.common)
        return evaluate(request, inputs.core)
    except RigplanError:
        sweep.exclude("unsupported")
        return None


def _demand_failure(est: Estimate, inputs: Inputs) -> tuple[str, str, float] | None:
    """Users the KV pool cannot serve, or decode too slow: (constraint, why, how far off)."""
    mem = est.memory
    served = mem.max_concurrent_sequences if mem.max_concurrent_sequences is not None else inputs.users
    if served < inputs.users:
        return "users", f"its KV pool serves {served} of {inputs.users} users", over(inputs.users, max(served, 1))
    speed = est.speed.decode_tokens_per_s
    if inputs.min_tokens_per_s is None:
        return None
    if speed is None:
        return "speed_unknown", "", 0.0
    if speed < inputs.min_tokens_per_s:
        why = f"decodes {format_rate(speed)} per user, under {format_rate(inputs.min_tokens_per_s)}"
        return "min_tokens_per_s", why, over(inputs.min_tokens_per_s, speed)
    return None


def _recommend(p: _Priced, engine: str, q: Quant, est: Estimate, inputs: Inputs) -> Recommendation:
    mem = est.memory
    served = mem.max_concurrent_sequences if mem.max_concurrent_sequences is not None else inputs.users
    rpower = estimate_power(p.rig, mem, est.speed, platform=p.fit.platform if p.fit else None, batch=inputs.users)
    throughput = est.speed.decode_throughput_tokens_per_s or est.speed.decode_tokens_per_s
    per_m = per_h = None
    if inputs.kwh_price is not None:
        per_m = energy_cost_per_million_tokens(rpower.workload_wall_watts, throughput, inputs.kwh_price)
        per_h = energy_cost_per_hour(rpower.workload_wall_watts, inputs.kwh_price)
    return Recommendation(
        rig=p.rig,
        owned=p.owned,
        engine=engine,
        quant=q,
        cost_usd=p.cost,
        cost_complete=p.complete,
        cost_items=p.items,
        estimate=est,
        power=rpower,
        platform=p.fit,
        users_served=served,
        energy_usd_per_million_tokens=per_m,
        energy_usd_per_hour=per_h,
    )


def _try_pairs(
    p: _Priced, pairs: Sequence[tuple[str, Quant]], inputs: Inputs, bounds: Bounds, sweep: Sweep
) -> tuple[bool, list[Recommendation]]:
    """Estimate each (engine, quant) pair; (whether any fitted in memory, what qualified).

    One quant per rig and engine can win: ranked by cost, the widest that qualifies (same cost,
    more bits); ranked by speed, value or efficiency, the narrowest (decode reads every weight
    once per token, so fewer bits per weight decode faster: perf-model.md §3.1).  The others
    need no estimate.
    """
    text = p.rig.describe()
    fitted_any = False
    out: list[Recommendation] = []
    settled: set[str] = set()
    for engine, q in pairs:
        if engine in settled:
            sweep.exclude("dominated")
            continue
        est = _estimate(p, engine, q, inputs, bounds, sweep)
        if est is None:
            continue
        if not est.fits:
            devices = est.memory.devices
            over_by = max((d.total_bytes / d.usable_bytes if d.usable_bytes else 9.0) for d in devices) - 1.0
            sweep.exclude("memory")
            sweep.miss(
                text, q.id, engine, p.cost, [(f"needs {over_by:.0%} more memory on its fullest GPU", max(over_by, 0.0))]
            )
            continue
        fitted_any = True
        failure = _demand_failure(est, inputs)
        if failure is not None:
            sweep.exclude(failure[0])
            if failure[1]:
                sweep.miss(text, q.id, engine, p.cost, [(failure[1], failure[2])])
            continue
        out.append(_recommend(p, engine, q, est, inputs))
        settled.add(engine)
    return fitted_any, out


def sweep_rig(
    rig: Rig,
    owned: int,
    engines: Sequence[str],
    quant: str,
    inputs: Inputs,
    bounds: Bounds,
    catalog: Catalog,
    prices: Mapping[str, float],
    sweep: Sweep,
    out: list[Recommendation],
    *,
    prefer: str,
) -> bool:
    """Evaluate one rig under every engine and quant; append what qualifies.  Returns whether any
    candidate fitted in memory (so callers can stop adding GPUs)."""
    # Widest quant first when ranking by cost, narrowest first otherwise (see ``_try_pairs``).
    order = 1 if inputs.objective == "cheapest" else -1
    pairs = [(e, q) for e in engines for q in ladder(e, quant, rig.gpus)[::order]]
    if not pairs:
        return False
    sweep.considered += len(pairs)
    if inputs.max_gpus is not None and rig.gpu_count > inputs.max_gpus:
        sweep.exclude("max_gpus", len(pairs))
        return False
    placed, fit = _platform(rig, inputs, catalog, sweep, len(pairs), prefer)
    if not placed:
        return False
    if inputs.nvlink and (fit is None or fit.nvlink.kind == "none" or not fit.nvlink.full):
        sweep.exclude("nvlink", len(pairs))
        return False
    priced = _price(rig, owned, fit, inputs, catalog, prices)
    failures = _cheap_failures(priced, inputs)
    if failures:
        sweep.exclude(failures[0][0], len(pairs))
        # One entry per rig: its narrowest quant, the likeliest to fit (memory is not checked here).
        e, q = min(pairs, key=lambda pair: pair[1].bits_per_weight)
        unverified = (rig, {**priced.common, "quant": q.id, "engine": e})
        sweep.miss(rig.describe(), q.id, e, priced.cost, [(t, v) for _, t, v in failures], unverified=unverified)
        return True  # assume it would fit: adding GPUs only makes these worse
    fitted_any, found = _try_pairs(priced, pairs, inputs, bounds, sweep)
    out.extend(found)
    return fitted_any
