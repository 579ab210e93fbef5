"""Evaluate one rig: platform, cost and power checks first (no estimate needed), then the core
estimate for each engine and quant; what qualifies becomes a :class:`Recommendation`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..catalog.records import Catalog
from ..core import evaluate
from ..engines import VLLM, get_engine
from ..errors import RigplanError
from ..headroom import fullest_fraction, within_margin
from ..memory import usable_capacity
from ..platforms import PlatformFit, choose_platform
from ..power import PowerEstimate, energy_cost_per_hour, energy_cost_per_million_tokens, estimate_power
from ..quant import Quant
from ..requests import InferenceRequest
from ..results import Estimate, per_user_speed
from ..rig import Rig
from ..units import format_rate, format_usd
from .costing import rig_cost
from .ladders import Bounds, engine_runs_on, ladder, valid_tp
from .records import CostItem, Recommendation
from .sweep import UNKNOWN_PRICE_SEVERITY, Inputs, Sweep, over


@dataclass(frozen=True, slots=True)
class Priced:
    """One rig with its platform, power budget and cost, before any estimate."""

    rig: Rig
    owned: int
    fit: PlatformFit | None
    power: PowerEstimate
    cost: float | None
    complete: bool
    items: tuple[CostItem, ...]
    #: the estimate's workload and link options, shared by every engine and quant
    common: dict[str, Any]


def _platform(
    rig: Rig, n: int, inputs: Inputs, catalog: Catalog, sweep: Sweep, prefer: str
) -> tuple[bool, PlatformFit | None]:
    """(whether a platform takes the rig, the platform; None for an Apple machine, its own);
    counts the ``n`` candidates under "platform" or "nvlink" when none does."""
    node = rig.gpus
    fit: PlatformFit | None = None
    if any(g.is_system for g in node):
        if inputs.platform_class not in (None, "desktop"):
            sweep.exclude("platform", n)
            return False, None
    else:
        host = inputs.host
        if host is not None and rig.nodes > 1:
            sweep.exclude("platform", n)
            return False, None
        fit, checked = choose_platform(
            node,
            host.platforms(catalog) if host else catalog.platforms.values(),
            platform_class="desktop" if host and host.platform is None else inputs.platform_class,
            prefer=prefer,
        )
        if fit is None:
            sweep.exclude("platform", n)
            reasons = sorted({p for f in checked for p in f.problems})
            sweep.miss(rig.describe(), "-", "-", None, [(f"no platform takes it: {'; '.join(reasons[:2])}", 1.0)])
            return False, None
    if inputs.nvlink and (fit is None or fit.nvlink.kind == "none" or not fit.nvlink.full):
        sweep.exclude("nvlink", n)
        return False, None
    return True, fit


def _price(
    rig: Rig, owned: int, fit: PlatformFit | None, inputs: Inputs, catalog: Catalog, prices: Mapping[str, float]
) -> Priced:
    """The rig's link options, power budget and cost."""
    link = None
    lanes = None
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
    cost, complete, items = rig_cost(rig, owned, fit, power, catalog, prices, inputs.condition, inputs.host)
    return Priced(rig, owned, fit, power, cost, complete, items, common)


def _cheap_failures(p: Priced, inputs: Inputs) -> list[tuple[str, str, float]]:
    """(constraint, why, how far off) for budget, watts and circuit: known before an estimate."""
    failures: list[tuple[str, str, float]] = []
    cost, budget, power = p.cost, inputs.budget_usd, p.power
    if budget is not None and cost is None:
        failures.append(("price_unknown", "no sourced price for a GPU (give one with --price)", UNKNOWN_PRICE_SEVERITY))
    elif budget is not None and cost is not None and cost > budget:
        why = f"costs {format_usd(cost)}, {format_usd(cost - budget)} over the {format_usd(budget)} budget"
        failures.append(("budget", why, over(cost, budget)))
    if inputs.max_watts is not None and power.system_watts > inputs.max_watts:
        why = f"needs {power.system_watts:,} W, over the {inputs.max_watts:,.0f} W limit"
        failures.append(("max_watts", why, over(power.system_watts, inputs.max_watts)))
    if inputs.circuit is not None:
        check = power.circuits[inputs.circuit]
        if not check.fits:
            why = (
                f"draws {check.wall_watts:,} W at the wall, over the {check.capacity_watts:,} W "
                f"a {inputs.circuit} circuit carries continuously"
            )
            failures.append(("circuit", why, over(check.wall_watts, check.capacity_watts)))
    return failures


def _estimate(engine: str, q: Quant, p: Priced, inputs: Inputs, bounds: Bounds, sweep: Sweep) -> Estimate | None:
    """The core estimate of one engine and quant on the rig, or None (counted) when the engine
    cannot run it or it cannot fit (known from a lower bound, or estimated)."""
    rig = p.rig
    eng = get_engine(engine)
    if not engine_runs_on(engine, rig.gpus, q.id):
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


def _margin_miss(est: Estimate, engine: str, q: Quant, p: Priced, inputs: Inputs, sweep: Sweep) -> None:
    """Count a rig whose fullest GPU is inside the margin (or over) as a memory miss."""
    full = fullest_fraction(est)
    sweep.exclude("memory")
    if est.fits:
        why = f"its fullest GPU is {full:.0%} full, inside the {inputs.margin:.0%} margin"
    else:
        why = f"needs {full - 1.0:.0%} more memory on its fullest GPU"
    sweep.miss(p.rig.describe(), q.id, engine, p.cost, [(why, max(full - (1.0 - inputs.margin), 0.0))])


def _demand_failure(est: Estimate, engine: str, q: Quant, p: Priced, inputs: Inputs, sweep: Sweep) -> bool:
    """Whether the rig misses the users or the speed asked for (counted and recorded)."""
    mem = est.memory
    text = p.rig.describe()
    served = mem.max_concurrent_sequences if mem.max_concurrent_sequences is not None else inputs.users
    if served < inputs.users:
        sweep.exclude("users")
        why = f"its KV pool serves {served} of {inputs.users} users"
        sweep.miss(text, q.id, engine, p.cost, [(why, over(inputs.users, max(served, 1)))])
        return True
    if inputs.min_tokens_per_s is None:
        return False
    speed = per_user_speed(est)[0]  # the rule of `rigplan capacity`: prompts included
    if speed is None:
        sweep.exclude("speed_unknown")
        return True
    if speed < inputs.min_tokens_per_s:
        sweep.exclude("min_tokens_per_s")
        why = f"streams {format_rate(speed)} per user, prompts included, under {format_rate(inputs.min_tokens_per_s)}"
        sweep.miss(text, q.id, engine, p.cost, [(why, over(inputs.min_tokens_per_s, speed))])
        return True
    return False


def _recommend(est: Estimate, engine: str, q: Quant, p: Priced, inputs: Inputs) -> Recommendation:
    """A qualifying rig with its power in this workload and its electricity cost."""
    mem = est.memory
    served = mem.max_concurrent_sequences if mem.max_concurrent_sequences is not None else inputs.users
    fit = p.fit
    rpower = estimate_power(p.rig, mem, est.speed, platform=fit.platform if fit else None, batch=inputs.users)
    throughput = est.speed.decode_throughput_tokens_per_s or per_user_speed(est)[0]
    per_m = per_h = None
    if inputs.kwh_price is not None:
        per_m = energy_cost_per_million_tokens(rpower.workload_wall_watts, throughput, inputs.kwh_price)
        per_h = energy_cost_per_hour(rpower.workload_wall_watts, inputs.kwh_price)
    return Recommendation(
        rig=p.rig, owned=p.owned, engine=engine, quant=q, cost_usd=p.cost, cost_complete=p.complete,
        cost_items=p.items, estimate=est, power=rpower, platform=fit, users_served=served,
        energy_usd_per_million_tokens=per_m, energy_usd_per_hour=per_h,
    )  # fmt: skip


def _priced_within_limits(
    rig: Rig,
    owned: int,
    fit: PlatformFit | None,
    n: int,
    inputs: Inputs,
    catalog: Catalog,
    prices: Mapping[str, float],
    prefer: str,
) -> tuple[Priced, list[tuple[str, str, float]]]:
    """The rig priced on ``fit`` and what it breaks before an estimate (budget, watts,
    circuit).  A platform picked for its lanes ("fastest") that breaks a limit gives way to the
    one picked by price when that one keeps within every limit: the rig still qualifies."""
    priced = _price(rig, owned, fit, inputs, catalog, prices)
    failures = _cheap_failures(priced, inputs)
    if not failures or prefer == "price" or fit is None:
        return priced, failures
    ok, cheaper = _platform(rig, n, inputs, catalog, Sweep(), "price")
    if not ok or cheaper is None or cheaper.platform.id == fit.platform.id:
        return priced, failures
    repriced = _price(rig, owned, cheaper, inputs, catalog, prices)
    refailures = _cheap_failures(repriced, inputs)
    return (repriced, refailures) if not refailures else (priced, failures)


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
    # Widest quant first when ranking by cost, narrowest first otherwise (see ``settled`` below).
    order = 1 if inputs.objective == "cheapest" else -1
    pairs = [(e, q) for e in engines for q in ladder(e, quant, rig.gpus)[::order]]
    if not pairs:
        return False
    sweep.considered += len(pairs)
    if inputs.max_gpus is not None and rig.gpu_count > inputs.max_gpus:
        sweep.exclude("max_gpus", len(pairs))
        return False
    ok, fit = _platform(rig, len(pairs), inputs, catalog, sweep, prefer)
    if not ok:
        return False
    priced, failures = _priced_within_limits(rig, owned, fit, len(pairs), inputs, catalog, prices, prefer)
    if failures:
        sweep.exclude(failures[0][0], len(pairs))
        # One entry per rig: its narrowest quant, the likeliest to fit (memory is not checked here).
        e, q = min(pairs, key=lambda pair: pair[1].bits_per_weight)
        unverified = (rig, {**priced.common, "quant": q.id, "engine": e})
        sweep.miss(rig.describe(), q.id, e, priced.cost, [(t, v) for _, t, v in failures], unverified=unverified)
        return True  # assume it would fit: adding GPUs only makes these worse
    return _try_pairs(pairs, priced, inputs, bounds, sweep, out)


def _try_pairs(
    pairs: Sequence[tuple[str, Quant]],
    p: Priced,
    inputs: Inputs,
    bounds: Bounds,
    sweep: Sweep,
    out: list[Recommendation],
) -> bool:
    """Estimate each (engine, quant) in order; append what qualifies.  Returns whether any fitted.

    One quant per rig and engine can win: ranked by cost, the widest that qualifies (same cost,
    more bits); ranked by speed, value or efficiency, the narrowest (decode reads every weight
    once per token, so fewer bits per weight decode faster: perf-model.md §3.1).  The others
    need no estimate."""
    fitted_any = False
    settled: set[str] = set()
    for engine, q in pairs:
        if engine in settled:
            sweep.exclude("dominated")
            continue
        est = _estimate(engine, q, p, inputs, bounds, sweep)
        if est is None:
            continue
        if not within_margin(est, inputs.margin):
            _margin_miss(est, engine, q, p, inputs, sweep)
            continue
        fitted_any = True
        if _demand_failure(est, engine, q, p, inputs, sweep):
            continue
        out.append(_recommend(est, engine, q, p, inputs))
        settled.add(engine)
    return fitted_any
