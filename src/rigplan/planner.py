"""Planner: enumerate rigs, keep those that fit and meet every constraint, rank, explain.

``plan_rigs`` is the buyer's guide, computed: GPU type × count (1–8 per box; nodes of 8 for
datacentre parts) × quant × engine, plus rigs that add GPUs to ones already owned.  Each
candidate gets a platform (``platforms.py``), a price (``catalog/data/prices.toml``, the user's
config file, or ``prices=``), a power budget (``power.py``) and an estimate
(:func:`rigplan.estimate.estimate`); the ones that qualify are ranked by the objective and
explained from their numbers.

The sweep stays fast by pruning before estimating: a lower bound of the memory each GPU must
hold (weights less the token embeddings, plus the KV cache) skips counts that cannot fit, and
constraints known before an estimate (price, watts, circuit, platform, NVLink) are checked first.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .backends import default_backend
from .catalog import load_catalog
from .catalog.query import best_price
from .catalog.records import GPU, Catalog, Model, Platform, Price
from .catalog.support import load_support_rules
from .core import Context, evaluate
from .engines import LLAMA_CPP, VLLM, get_engine
from .errors import DataFileError, InvalidValueError, RigplanError, UnknownNameError, UnsupportedError
from .headroom import DEFAULT_MARGIN, fullest_fraction, within_margin
from .memory import usable_capacity
from .memory.kv_cache import kv_bytes
from .offload import OFFLOAD_GPU_COUNTS, OFFLOAD_MIN_WEIGHTS_GIB, host_ram, offload_gpus, offload_platforms
from .owned_host import OwnedHost
from .placement import tensor_parallel_problems
from .platforms import PSU_INCLUDED_W, PlatformFit, choose_platform, fit_platform
from .power import (
    PowerEstimate,
    energy_cost_per_hour,
    energy_cost_per_million_tokens,
    estimate_power,
)
from .quant import Quant, engine_supports, get_quant, resolve_quant, weights_bytes
from .requests import OBJECTIVES, InferenceRequest, PlanRequest
from .results import Estimate
from .rig import Rig, resolve_gpu
from .support import check_support
from .units import GIB, format_gib, format_rate, format_usd

#: A margin above this leaves too little of a GPU to plan with (0.5 = half kept free).
MAX_MARGIN = 0.5

#: Engines swept when the user names none: one of each family that behaves differently.
#: SGLang and TensorRT-LLM plan like vLLM (same family); transformers is rarely the fast choice.
DEFAULT_ENGINES = ("llama.cpp", "vllm", "exllamav2")

#: ``quant="any"``: the formats swept per engine family, widest first.  The floor is 4 bits per
#: weight: below it quality falls off quickly (llama.cpp k-quants PR #1684 perplexity table,
#: perf-model.md [S:KQ]); name a lower quant (``--quant q3_k_m``) to plan with it.
QUANT_LADDERS: dict[str, tuple[str, ...]] = {
    LLAMA_CPP: ("f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m"),
    VLLM: ("bf16", "fp8", "int8", "int4"),
    "exllamav2": ("exl2-8.0", "exl2-6.0", "exl2-5.0", "exl2-4.0"),
    "transformers": ("bf16", "int8", "nf4"),
}

#: GPUs per box: the 8-GPU servers of platforms.toml are the largest single machines.
MAX_GPUS_PER_BOX = 8
#: Nodes of 8 datacentre GPUs tried when one box cannot hold the model (Llama 3.1 405B and
#: DeepSeek V3 at 16-bit need two H100 nodes).
MAX_NODES = 4
#: Context planned for when the user gives none: 4,096 tokens (Llama 2's whole window; a
#: conversation's worth on newer models), capped at the model's maximum.
DEFAULT_CONTEXT = 4096
DEFAULT_PROMPT_TOKENS = 512
DEFAULT_OUTPUT_TOKENS = 128
DEFAULT_TOP = 5

#: A GPU whose fullest memory is above this share is flagged: little room for more context.
TIGHT_MEMORY_SHARE = 0.9
#: A pooled engine whose KV pool holds fewer than this many times the users asked for is flagged.
POOL_HEADROOM = 2
#: A launch price older than this (years before the price's date) is flagged as likely stale.
STALE_LAUNCH_YEARS = 3

#: PSU prices with sources (market facts; the PSU is priced at the smallest sourced size that
#: covers the need, and past 2000 W as several 2000 W units).  (watts, usd, source, as_of)
PSU_PRICES: tuple[tuple[int, float, str, str], ...] = (
    (850, 100.0, "https://mylocalai.org/blog/best-budget-ai-pc-build (850 W 80+ Gold $90–110, midpoint)", "2026-11-26"),
    (1500, 380.0, "https://bestllmfor.com/best/dual-rtx-3090-budget-rig/ (1500 W 80+ Titanium)", "2026-05-16"),
    (
        2000,
        600.0,
        "https://maxj.phd/git/max/makenotwork/commit/ad63f4a16f618a21abeae3b306a4ed855da94278 (2000 W Titanium-class)",
        "2026-05-23",
    ),
)

#: Constraint names, in the order they are checked (cheapest checks first).
CONSTRAINTS = (
    "gpu_class",
    "discontinued",
    "max_gpus",
    "platform",
    "nvlink",
    "price_unknown",
    "budget",
    "max_watts",
    "circuit",
    "memory",
    "users",
    "speed_unknown",
    "min_tokens_per_s",
    "unsupported",
    "dominated",
)


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CostItem:
    """One line of a rig's cost: what, how much, and where the price comes from."""

    item: str
    usd: float | None
    kind: str  # launch | street | used | yours | owned | platform | psu | unknown
    source: str
    as_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.item, "usd": self.usd, "kind": self.kind, "source": self.source, "as_of": self.as_of}


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One ranked rig with its estimate, power, platform, cost and explanation."""

    rig: Rig
    owned: int
    engine: str
    quant: Quant
    cost_usd: float | None
    cost_complete: bool
    cost_items: tuple[CostItem, ...]
    estimate: Estimate
    power: PowerEstimate
    platform: PlatformFit | None
    users_served: int | None
    energy_usd_per_million_tokens: float | None = None
    energy_usd_per_hour: float | None = None
    why: tuple[str, ...] = ()
    avoid_if: tuple[str, ...] = ()
    next_step: str | None = None

    @property
    def rig_text(self) -> str:
        return self.rig.describe()

    @property
    def decode_tokens_per_s(self) -> float | None:
        return self.estimate.speed.decode_tokens_per_s

    @property
    def throughput_tokens_per_s(self) -> float | None:
        s = self.estimate.speed
        return s.decode_throughput_tokens_per_s or s.decode_tokens_per_s

    def to_dict(self) -> dict[str, Any]:
        est = self.estimate.to_dict()
        est["power"] = self.power.to_dict()
        fit = self.platform
        return {
            "rig": self.rig_text,
            "gpus": [g.id for g in self.rig.all_gpus],
            "owned_gpus": [g.id for g in self.rig.gpus[: self.owned]],
            "quant": self.quant.id,
            "engine": self.engine,
            "cost_usd": self.cost_usd,
            "cost_complete": self.cost_complete,
            "cost": [c.to_dict() for c in self.cost_items],
            "users_served": self.users_served,
            "estimate": est,
            "power": self.power.to_dict(),
            "platform": {
                "class": fit.platform_class if fit else "desktop",  # an Apple machine is its own desktop
                "id": fit.platform.id if fit else None,
                "name": fit.platform.name if fit else self.rig.gpus[0].name,
                "pcie_lanes_per_gpu": fit.lanes_per_gpu if fit else None,
                "pcie_generation": fit.pcie_generation if fit else None,
                "slots": fit.slots_used if fit else 0,
                "gpu_slots": fit.platform.gpu_slots if fit else 0,
                "needs_risers": fit.needs_risers if fit else False,
                "nvlink": fit.nvlink.describe() if fit else "no NVLink",
                "notes": list(fit.notes) if fit else [],
            },
            "energy_usd_per_million_tokens": _round(self.energy_usd_per_million_tokens, 4),
            "energy_usd_per_hour": _round(self.energy_usd_per_hour, 4),
            "why": list(self.why),
            "avoid_if": list(self.avoid_if),
            "next_step": self.next_step,
        }


@dataclass(frozen=True, slots=True)
class NearestMiss:
    """The candidate that came closest to qualifying, and what it missed by."""

    rig: str
    quant: str
    engine: str
    cost_usd: float | None
    failed: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rig": self.rig,
            "quant": self.quant,
            "engine": self.engine,
            "cost_usd": self.cost_usd,
            "failed": list(self.failed),
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """The planner's answer: ranked recommendations, or why nothing qualified."""

    model: str
    objective: str
    constraints: dict[str, Any]
    recommendations: tuple[Recommendation, ...]
    considered: int
    qualified: int
    estimated: int
    excluded: dict[str, int]
    nearest_miss: NearestMiss | None
    notes: tuple[str, ...]
    elapsed_s: float
    #: runs, but slowly or with a caveat (design.md §3, second round)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``rigplan plan --json``."""
        return {
            "model": self.model,
            "objective": self.objective,
            "constraints": self.constraints,
            "recommendations": [r.to_dict() for r in self.recommendations],
            "considered": self.considered,
            "qualified": self.qualified,
            "estimated": self.estimated,
            "excluded": dict(self.excluded),
            "nearest_miss": self.nearest_miss.to_dict() if self.nearest_miss else None,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "elapsed_s": round(self.elapsed_s, 4),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# ---------------------------------------------------------------------------------------------
# Prices
# ---------------------------------------------------------------------------------------------


def check_prices(prices: Mapping[str, Any], catalog: Catalog, *, where: str = "prices") -> dict[str, float]:
    out: dict[str, float] = {}
    for name, usd in prices.items():
        try:
            gpu = resolve_gpu(str(name), catalog)
        except UnknownNameError as exc:
            if where == "prices":
                raise
            raise DataFileError(where, f"prices.{name}", str(exc)) from None
        if isinstance(usd, bool) or not isinstance(usd, int | float) or not usd > 0 or math.isinf(usd):
            if where == "prices":
                raise InvalidValueError("price", f"{name}: must be a number of dollars > 0, got {usd!r}")
            raise DataFileError(where, f"prices.{name}", f"must be a number of dollars > 0, got {usd!r}")
        out[gpu.id] = float(usd)
    return out


def parse_price_overrides(items: Iterable[str], catalog: Catalog | None = None) -> dict[str, float]:
    """``["rtx-3090=700"]`` → {"rtx-3090": 700.0}.

    Raises:
        InvalidValueError: not ``GPU=USD``; UnknownGPUError: a GPU not in the catalogue.
    """
    raw: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidValueError("price", f"expected GPU=USD (e.g. rtx-3090=700), got {item!r}")
        try:
            raw[name.strip()] = float(value.strip().lstrip("$").replace(",", ""))
        except ValueError:
            raise InvalidValueError("price", f"{item!r}: {value!r} is not a number of dollars") from None
    return check_prices(raw, catalog or load_catalog())


def psu_cost(watts: int, units: int = 1) -> CostItem:
    """The price of ``units`` PSUs sharing ``watts``: each priced at the smallest sourced size
    that covers its share."""
    share = watts / max(units, 1)
    covering = [row for row in PSU_PRICES if share <= row[0]]
    size, usd, source, as_of = covering[0] if covering else PSU_PRICES[-1]
    if not covering:
        units = math.ceil(watts / size)
    if units == 1:
        return CostItem(f"PSU for {watts:,} W (priced as a {size:,} W unit)", usd, "psu", source, as_of)
    return CostItem(f"{units} PSUs for {watts:,} W (priced as {units}x {size:,} W)", usd * units, "psu", source, as_of)


def _gpu_price(
    gpu: GPU, catalog: Catalog, prices: Mapping[str, float], condition: str | None = None
) -> tuple[CostItem, Price | None]:
    """The price line of one GPU (per GPU) and the catalogue row it came from (None for the
    user's own price or none)."""
    if gpu.id in prices:
        return CostItem(gpu.id, prices[gpu.id], "yours", "your price (--price or config.toml [prices])"), None
    p: Price | None = best_price(catalog, gpu.id, condition)
    if p is None:
        return CostItem(gpu.id, None, "unknown", "no sourced price (give one with --price)"), None
    return CostItem(gpu.id, p.usd_per_gpu, p.kind, p.source, p.as_of.isoformat()), p


def _gpu_lines(
    rig: Rig, owned: int, catalog: Catalog, prices: Mapping[str, float], condition: str | None
) -> tuple[float | None, bool, list[CostItem]]:
    """(GPU cost or None if one is unpriced, whether a price already covers the host machine,
    the lines).  A part sold in units of several GPUs (an 8-GPU HGX board or DGX server) is
    bought in whole units."""
    items: list[CostItem] = []
    counts: dict[str, int] = {}
    for g in rig.gpus[owned:]:
        counts[g.id] = counts.get(g.id, 0) + 1
    by_id = {g.id: g for g in rig.gpus}
    total: float | None = 0.0
    whole_machine = False
    for gid, n in counts.items():
        line, row = _gpu_price(by_id[gid], catalog, prices, condition)
        count = n * rig.nodes
        usd = None if line.usd is None else line.usd * count
        label = f"{count}x {gid}"
        if row is not None and row.unit_gpus > 1:
            units = math.ceil(count / row.unit_gpus)
            usd = row.usd * units
            what = "server" if row.complete_machine else "board"
            label = f"{units}x {row.unit_gpus}-GPU {gid} {what} ({count} used)"
        whole_machine = whole_machine or (row is not None and row.complete_machine)
        items.append(dataclasses.replace(line, item=label, usd=usd))
        total = None if total is None or usd is None else total + usd
    return total, whole_machine, items


# ---------------------------------------------------------------------------------------------
# Candidates
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Miss:
    """A candidate that failed, how many constraints it missed and by how much (relative)."""

    failures: int
    severity: float
    rig_text: str
    quant: str
    engine: str
    cost: float | None
    failed: tuple[str, ...]
    rig: Rig | None = None
    estimate_kwargs: dict[str, Any] | None = None  # set when its memory fit was not checked


@dataclass(slots=True)
class _Sweep:
    """Mutable state of one sweep (counts of exclusions, misses for the nearest-miss report)."""

    excluded: dict[str, int] = field(default_factory=dict)
    considered: int = 0
    estimated: int = 0
    misses: list[_Miss] = field(default_factory=list)

    def exclude(self, constraint: str, n: int = 1) -> None:
        self.excluded[constraint] = self.excluded.get(constraint, 0) + n

    def miss(
        self,
        rig: str,
        quant: str,
        engine: str,
        cost: float | None,
        failed: list[tuple[str, float]],
        *,
        unverified: tuple[Rig, dict[str, Any]] | None = None,
    ) -> None:
        """Record a candidate that failed; ``failed`` pairs each reason with how far off it is
        (relative: 0.1 = 10 % over).  ``unverified``: (rig, estimate kwargs) of a candidate
        excluded before its memory was checked."""
        if failed:
            self.misses.append(
                _Miss(
                    len(failed),
                    sum(v for _, v in failed),
                    rig,
                    quant,
                    engine,
                    cost,
                    tuple(t for t, _ in failed),
                    rig=unverified[0] if unverified else None,
                    estimate_kwargs=unverified[1] if unverified else None,
                )
            )


@dataclass(frozen=True, slots=True)
class _Inputs:
    model: Model
    context: int
    users: int
    prompt_tokens: int
    output_tokens: int
    min_tokens_per_s: float | None
    budget_usd: float | None
    max_watts: float | None
    circuit: str | None
    max_gpus: int | None
    gpu_class: str | None
    platform_class: str | None
    nvlink: bool
    objective: str
    kwh_price: float | None
    core: Context
    condition: str | None = None  # "new" | "used" | None (newest market price)
    margin: float = DEFAULT_MARGIN
    host: OwnedHost | None = None  # the PC the buyer owns (--have desktop): GPUs are added to it
    include_discontinued: bool = False


def _engines(engine: str | None, owned: Sequence[GPU]) -> tuple[str, ...]:
    if engine:
        return (get_engine(engine).id,)
    return DEFAULT_ENGINES


def _ladder(engine: str, quant: str, gpus: Sequence[GPU]) -> tuple[Quant, ...]:
    """Quants to try for ``engine`` on ``gpus``: the ladder for "any", else the one named."""
    eng = get_engine(engine)
    has_fp8 = all(g.has_fp8 for g in gpus)
    if quant.strip().lower() != "any":
        try:
            q = resolve_quant(quant, eng.id, gpu_has_fp8=has_fp8)
        except RigplanError:
            return ()
        return (q,) if engine_supports(q, eng.id) else ()
    ladder = QUANT_LADDERS.get(eng.family, ())
    out = []
    for qid in ladder:
        if qid == "fp8" and not has_fp8:
            continue
        if qid == "int8" and has_fp8 and "fp8" in ladder:
            continue
        q = get_quant(qid)
        if engine_supports(q, eng.id):
            out.append(q)
    return tuple(out)


def _engine_runs_on(engine: str, gpus: Sequence[GPU], quant: str = "f16") -> bool:
    """Whether the engine × hardware table lets ``engine`` run on ``gpus`` (a refused
    combination is never ranked; estimate() refuses it too)."""
    eng = get_engine(engine)
    backend = default_backend(gpus) if eng.family == LLAMA_CPP else None
    try:
        check_support(load_support_rules(), eng.id, gpus, quant, backend)
    except UnsupportedError:
        return False
    return True


def _valid_tp(model: Model, n: int) -> bool:
    return not tensor_parallel_problems(model, n)


def _embedding_share(model: Model) -> float:
    """Share of the parameters in the token-embedding table (llama.cpp keeps it in host RAM)."""
    total = model.published_param_count or 1
    return min(0.5, model.vocab_size * model.hidden_size / total)


class _Bounds:
    """Cached lower bounds of what one GPU set must hold, per (quant, kv dtype)."""

    def __init__(self, inputs: _Inputs) -> None:
        self.inputs = inputs
        self._weights: dict[str, int] = {}
        self._kv: dict[str, int] = {}
        self.embedding_share = _embedding_share(inputs.model)

    def need_bytes(self, quant: Quant, engine: str) -> float:
        """A lower bound of the bytes the GPUs hold: weights (less the embedding table where the
        engine keeps it on the host) plus one KV cache per user."""
        m = self.inputs.model
        if quant.id not in self._weights:
            self._weights[quant.id] = weights_bytes(m, quant)
        eng = get_engine(engine)
        kv_dtype = eng.default_kv_dtype
        if kv_dtype not in self._kv:
            self._kv[kv_dtype] = kv_bytes(m, range(m.num_layers), self.inputs.context, kv_dtype)
        weights = float(self._weights[quant.id])
        if eng.family != VLLM:
            weights *= 1 - self.embedding_share
        return weights + self._kv[kv_dtype] * self.inputs.users


def _min_count(need: float, gpu: GPU, engine: str) -> int:
    usable = usable_capacity(gpu, get_engine(engine))
    return max(1, math.ceil(need / usable)) if usable > 0 else 10**6


#: SXM and OAM modules come on 4- and 8-GPU baseboards (NVIDIA HGX H100 4-GPU and 8-GPU).
BASEBOARD_GPU_COUNTS = (4, 8)


def _counts(model: Model, gpu: GPU, engine: str, start: int, limit: int) -> list[int]:
    fam = get_engine(engine).family
    counts = [n for n in range(max(1, start), limit + 1) if fam != VLLM or _valid_tp(model, n)]
    if gpu.form_factor in ("sxm", "oam"):
        counts = [n for n in counts if n in BASEBOARD_GPU_COUNTS]
    return counts


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


def _rig_cost(
    rig: Rig,
    owned: int,
    fit: PlatformFit | None,
    power: PowerEstimate,
    catalog: Catalog,
    prices: Mapping[str, float],
    condition: str | None = None,
    host: OwnedHost | None = None,
) -> tuple[float | None, bool, tuple[CostItem, ...]]:
    """(cost of what must be bought or None if a GPU is unpriced, whether the cost is complete,
    the lines).  Owned GPUs cost nothing; a platform with no sourced price is left out; a
    complete server's price covers its platform and PSU."""
    gpu_total, whole_machine, items = _gpu_lines(rig, owned, catalog, prices, condition)
    for g in rig.gpus[:owned]:
        items.append(CostItem(f"1x {g.id}", 0.0, "owned", "already owned (--have)"))
    complete = True
    extra = 0.0
    if fit is not None and host is not None:
        items.append(CostItem(f"platform {fit.platform.id}", 0.0, "owned", f"{host.describe()} (--have)"))
        need = power.psu_watts
        if need is not None and host.psu_watts is not None and need > host.psu_watts:
            psu = psu_cost(need, power.psu_units)
            extra += psu.usd or 0.0
            items.append(dataclasses.replace(psu, item=psu.item + f", replacing your {host.psu_watts:,} W"))
        elif need is not None:
            known = f"your {host.psu_watts:,} W PSU" if host.psu_watts else f"your PSU (it must deliver {need:,} W)"
            items.append(CostItem(f"PSU {need:,} W", 0.0, "owned", known))
    elif fit is not None and whole_machine:
        items.append(CostItem(f"platform {fit.platform.id}", 0.0, "platform", "included in the server's price"))
    elif fit is not None:
        pcost = fit.cost_usd
        if pcost is None:
            complete = False
            items.append(
                CostItem(
                    f"platform {fit.platform.id}",
                    None,
                    "unknown",
                    f"price unknown: {fit.platform.source.split(' ; ')[0]}",
                )
            )
        else:
            extra += pcost * rig.nodes
            items.append(
                CostItem(
                    f"platform {fit.platform.id}" + (f" x{rig.nodes}" if rig.nodes > 1 else ""),
                    pcost * rig.nodes,
                    "platform",
                    fit.platform.source,
                    fit.platform.as_of.isoformat(),
                )
            )
        included = PSU_INCLUDED_W.get(fit.platform.id, 0)
        if power.psu_watts is not None and fit.platform.gpu_slots > 0 and power.psu_watts > included:
            psu = psu_cost(power.psu_watts, power.psu_units)
            extra += (psu.usd or 0.0) * rig.nodes
            items.append(psu)
    if gpu_total is None:
        return None, False, tuple(items)
    return gpu_total + extra, complete, tuple(items)


#: An unpriced rig is a poor "nearest miss" under a budget: rank it after any priced one.
UNKNOWN_PRICE_SEVERITY = 1e6


def _over(value: float, limit: float) -> float:
    return max(value / limit - 1.0, 0.0) if limit > 0 else float("inf")


def _sweep_rig(
    rig: Rig,
    owned: int,
    engines: Sequence[str],
    quant: str,
    inputs: _Inputs,
    bounds: _Bounds,
    catalog: Catalog,
    prices: Mapping[str, float],
    sweep: _Sweep,
    out: list[Recommendation],
    *,
    prefer: str,
) -> bool:
    """Evaluate one rig under every engine and quant; append what qualifies.  Returns whether any
    candidate fitted in memory (so callers can stop adding GPUs)."""
    m = inputs.model
    node = rig.gpus
    text = rig.describe()
    fitted_any = False
    # Widest quant first when ranking by cost, narrowest first otherwise (see ``settled`` below).
    order = 1 if inputs.objective == "cheapest" else -1
    pairs = [(e, q) for e in engines for q in _ladder(e, quant, node)[::order]]
    if not pairs:
        return False
    sweep.considered += len(pairs)
    if inputs.max_gpus is not None and rig.gpu_count > inputs.max_gpus:
        sweep.exclude("max_gpus", len(pairs))
        return False
    apple = any(g.is_system for g in node)
    fit: PlatformFit | None = None
    if apple:
        if inputs.platform_class not in (None, "desktop"):
            sweep.exclude("platform", len(pairs))
            return False
    else:
        host = inputs.host
        if host is not None and rig.nodes > 1:
            sweep.exclude("platform", len(pairs))
            return False
        fit, checked = choose_platform(
            node,
            host.platforms(catalog) if host else catalog.platforms.values(),
            platform_class="desktop" if host and host.platform is None else inputs.platform_class,
            prefer=prefer,
        )
        if fit is None:
            sweep.exclude("platform", len(pairs))
            reasons = sorted({p for f in checked for p in f.problems})
            sweep.miss(text, "-", "-", None, [(f"no platform takes it: {'; '.join(reasons[:2])}", 1.0)])
            return False
    if inputs.nvlink and (fit is None or fit.nvlink.kind == "none" or not fit.nvlink.full):
        sweep.exclude("nvlink", len(pairs))
        return False

    link = None
    lanes = None
    if fit is not None and all(g.form_factor == "pcie" for g in node):
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
    cost, complete, items = _rig_cost(rig, owned, fit, power, catalog, prices, inputs.condition, inputs.host)
    cheap_failures: list[tuple[str, str, float]] = []
    if inputs.budget_usd is not None:
        if cost is None:
            cheap_failures.append(
                ("price_unknown", "no sourced price for a GPU (give one with --price)", UNKNOWN_PRICE_SEVERITY)
            )
        elif cost > inputs.budget_usd:
            cheap_failures.append(
                (
                    "budget",
                    f"costs {format_usd(cost)}, {format_usd(cost - inputs.budget_usd)} over the "
                    f"{format_usd(inputs.budget_usd)} budget",
                    _over(cost, inputs.budget_usd),
                )
            )
    if inputs.max_watts is not None and power.system_watts > inputs.max_watts:
        cheap_failures.append(
            (
                "max_watts",
                f"needs {power.system_watts:,} W, over the {inputs.max_watts:,.0f} W limit",
                _over(power.system_watts, inputs.max_watts),
            )
        )
    if inputs.circuit is not None:
        check = power.circuits[inputs.circuit]
        if not check.fits:
            cheap_failures.append(
                (
                    "circuit",
                    f"draws {check.wall_watts:,} W at the wall, over the {check.capacity_watts:,} W "
                    f"a {inputs.circuit} circuit carries continuously",
                    _over(check.wall_watts, check.capacity_watts),
                )
            )
    if cheap_failures:
        sweep.exclude(cheap_failures[0][0], len(pairs))
        # One entry per rig: its narrowest quant, the likeliest to fit (memory is not checked here).
        e, q = min(pairs, key=lambda pair: pair[1].bits_per_weight)
        sweep.miss(
            text,
            q.id,
            e,
            cost,
            [(t, v) for _, t, v in cheap_failures],
            unverified=(rig, {**common, "quant": q.id, "engine": e}),
        )
        return True  # assume it would fit: adding GPUs only makes these worse

    # One quant per rig and engine can win: ranked by cost, the widest that qualifies (same cost,
    # more bits); ranked by speed, value or efficiency, the narrowest (decode reads every weight
    # once per token, so fewer bits per weight decode faster: perf-model.md §3.1).  The others
    # need no estimate.
    settled: set[str] = set()
    for engine, q in pairs:
        if engine in settled:
            sweep.exclude("dominated")
            continue
        eng = get_engine(engine)
        if not _engine_runs_on(engine, node, q.id):
            sweep.exclude("unsupported")
            continue
        if eng.family == VLLM and (rig.is_mixed or not _valid_tp(m, rig.gpus_per_node)):
            sweep.exclude("unsupported")
            continue
        need = bounds.need_bytes(q, engine)
        capacity = sum(usable_capacity(g, eng) for g in rig.all_gpus)
        if need > capacity:
            sweep.exclude("memory")
            continue
        try:
            sweep.estimated += 1
            est = evaluate(InferenceRequest(m, rig, quant=q.id, engine=engine, **common), inputs.core)  # type: ignore[arg-type]
        except RigplanError:
            sweep.exclude("unsupported")
            continue
        mem = est.memory
        if not within_margin(est, inputs.margin):
            full = fullest_fraction(est)
            sweep.exclude("memory")
            if est.fits:
                why = f"its fullest GPU is {full:.0%} full, inside the {inputs.margin:.0%} margin"
            else:
                why = f"needs {full - 1.0:.0%} more memory on its fullest GPU"
            sweep.miss(text, q.id, engine, cost, [(why, max(full - (1.0 - inputs.margin), 0.0))])
            continue
        fitted_any = True
        served = mem.max_concurrent_sequences if mem.max_concurrent_sequences is not None else inputs.users
        if served < inputs.users:
            sweep.exclude("users")
            sweep.miss(
                text,
                q.id,
                engine,
                cost,
                [(f"its KV pool serves {served} of {inputs.users} users", _over(inputs.users, max(served, 1)))],
            )
            continue
        speed = est.speed.decode_tokens_per_s
        if inputs.users > 1 and est.speed.output_throughput_tokens_per_s is not None:
            # Serving engines: each user's share of the output at this concurrency, prompts
            # included as chunked prefill schedules them (as `rigplan capacity` counts it).
            speed = est.speed.output_throughput_tokens_per_s / inputs.users
        if inputs.min_tokens_per_s is not None:
            if speed is None:
                sweep.exclude("speed_unknown")
                continue
            if speed < inputs.min_tokens_per_s:
                sweep.exclude("min_tokens_per_s")
                sweep.miss(
                    text,
                    q.id,
                    engine,
                    cost,
                    [
                        (
                            f"decodes {format_rate(speed)} per user, under {format_rate(inputs.min_tokens_per_s)}",
                            _over(inputs.min_tokens_per_s, speed),
                        )
                    ],
                )
                continue
        rpower = estimate_power(rig, mem, est.speed, platform=fit.platform if fit else None, batch=inputs.users)
        throughput = est.speed.decode_throughput_tokens_per_s or speed
        per_m = per_h = None
        if inputs.kwh_price is not None:
            per_m = energy_cost_per_million_tokens(rpower.workload_wall_watts, throughput, inputs.kwh_price)
            per_h = energy_cost_per_hour(rpower.workload_wall_watts, inputs.kwh_price)
        out.append(
            Recommendation(
                rig=rig,
                owned=owned,
                engine=engine,
                quant=q,
                cost_usd=cost,
                cost_complete=complete,
                cost_items=items,
                estimate=est,
                power=rpower,
                platform=fit,
                users_served=served,
                energy_usd_per_million_tokens=per_m,
                energy_usd_per_hour=per_h,
            )
        )
        settled.add(engine)
    return fitted_any


def _offload_rig(
    rig: Rig, platform: Platform, q: Quant, inputs: _Inputs, catalog: Catalog, prices: Mapping[str, float]
) -> Recommendation | None:
    """One GPU + host-RAM rig on ``platform`` with llama.cpp, priced with the RAM it needs."""
    fit = fit_platform(rig.gpus, platform)
    if not fit.fits:
        return None
    try:
        request = InferenceRequest(
            inputs.model, rig, quant=q.id, engine="llama.cpp", context=inputs.context, batch=inputs.users,
            prompt_tokens=inputs.prompt_tokens, output_tokens=inputs.output_tokens, gpu_layers="auto",
            host_ram_gb=platform.max_host_ram_gb, link=f"pcie{fit.pcie_generation}", lanes=fit.lanes_per_gpu,
            host_memory_bandwidth_gb_per_s=platform.host_memory_bandwidth_gb_per_s,
        )  # fmt: skip
        est = evaluate(request, inputs.core)
    except RigplanError:
        return None
    ram = host_ram(platform, est.memory.host_bytes)
    if ram is None or not est.memory.host_bytes or not within_margin(est, inputs.margin):
        return None
    power = estimate_power(rig, est.memory, est.speed, platform=platform, batch=inputs.users)
    cost, complete, items = _rig_cost(rig, 0, fit, power, catalog, prices, inputs.condition, inputs.host)
    ram_item = CostItem(ram.describe(), float(ram.usd), "ram", ram.source, ram.as_of)
    total = None if cost is None else cost + ram.usd
    served = est.memory.max_concurrent_sequences or inputs.users
    if total is None or (inputs.budget_usd is not None and total > inputs.budget_usd) or served < inputs.users:
        return None
    speed = est.speed.decode_tokens_per_s
    if inputs.min_tokens_per_s is not None and (speed is None or speed < inputs.min_tokens_per_s):
        return None
    return Recommendation(
        rig=rig, owned=0, engine="llama.cpp", quant=q, cost_usd=total, cost_complete=complete,
        cost_items=(*items, ram_item), estimate=est, power=power, platform=fit, users_served=served,
    )  # fmt: skip


def _sweep_offload(
    inputs: _Inputs, quant: str, catalog: Catalog, prices: Mapping[str, float], sweep: _Sweep
) -> list[Recommendation]:
    """GPU + host-RAM rigs (llama.cpp partial offload; MoE experts in RAM) for models whose
    4-bit weights outgrow two 24 GB cards: a few cheap GPU types x 1-2 cards x the cheapest and
    the fastest-RAM priced platforms (an owned PC: that one)."""
    qname = "q4_k_m" if quant.strip().lower() in ("any", "4bit") else quant
    try:
        q = resolve_quant(qname, "llama.cpp")
    except RigplanError:
        return []
    if (
        not engine_supports(q, "llama.cpp")
        or weights_bytes(inputs.model, get_quant("q4_k_m")) < OFFLOAD_MIN_WEIGHTS_GIB * GIB
    ):
        return []
    pool = [g for g in _pool(catalog, inputs.gpu_class, _Sweep(), inputs.include_discontinued) if not g.is_system]
    price_of = {g.id: p.usd_per_gpu for g in pool if (p := best_price(catalog, g.id, inputs.condition))}
    price_of.update({k: v for k, v in prices.items() if k in price_of or k in catalog.gpus})
    platforms = (
        list(inputs.host.platforms(catalog))
        if inputs.host
        else offload_platforms(
            [p for p in catalog.platforms.values() if inputs.platform_class in (None, p.platform_class)]
        )
    )
    out = []
    for gpu in offload_gpus(pool, price_of):
        for n in OFFLOAD_GPU_COUNTS:
            if inputs.max_gpus is not None and n > inputs.max_gpus:
                continue
            for platform in platforms:
                sweep.considered += 1
                sweep.estimated += 1
                rec = _offload_rig(Rig(gpus=(gpu,) * n), platform, q, inputs, catalog, prices)
                if rec is not None:
                    out.append(rec)
    return out


def _pool(catalog: Catalog, gpu_class: str | None, sweep: _Sweep, include_discontinued: bool = False) -> list[GPU]:
    """GPU types to sweep; those of another class are counted (as GPU types) under gpu_class,
    those withdrawn from sale under "discontinued" unless asked for."""
    gpus = []
    for g in catalog.gpus.values():
        if gpu_class and g.gpu_class != gpu_class:
            sweep.exclude("gpu_class")
            continue
        if g.discontinued is not None and not include_discontinued:
            sweep.exclude("discontinued")
            continue
        gpus.append(g)
    return gpus


def _enumerate(
    inputs: _Inputs,
    engines: Sequence[str],
    quant: str,
    owned: Sequence[GPU],
    catalog: Catalog,
    prices: Mapping[str, float],
    sweep: _Sweep,
    progress: Callable[[int, int], None] | None,
) -> list[Recommendation]:
    out: list[Recommendation] = []
    bounds = _Bounds(inputs)
    prefer = "lanes" if inputs.objective == "fastest" else "price"
    stop_at_first_fit = inputs.objective == "cheapest"
    pool = _pool(catalog, inputs.gpu_class, sweep, inputs.include_discontinued)
    m = inputs.model
    limit = min(MAX_GPUS_PER_BOX, inputs.max_gpus or MAX_GPUS_PER_BOX)
    total = len(pool) + (1 if owned else 0)

    owned_enough: set[str] = set()
    if owned:
        base = tuple(owned)
        before = len(out)
        _sweep_rig(
            Rig(gpus=base), len(base), engines, quant, inputs, bounds, catalog, prices, sweep, out, prefer=prefer
        )
        # Where the owned GPUs already qualify, adding a GPU only adds cost — except tensor
        # parallel, which may add speed when not ranking by cost.
        owned_enough = {r.engine for r in out[before:] if stop_at_first_fit or get_engine(r.engine).family != VLLM}
        if progress:
            progress(1, total)

    for i, gpu in enumerate(pool):
        if progress:
            progress(i + 1 + (1 if owned else 0), total)
        if gpu.is_system:
            if owned:
                continue
            _sweep_rig(Rig(gpus=(gpu,)), 0, engines, quant, inputs, bounds, catalog, prices, sweep, out, prefer=prefer)
            continue
        if owned and any(o.is_system for o in owned):
            continue
        for engine in engines:
            eng = get_engine(engine)
            if owned and eng.family == VLLM and any(o.id != gpu.id for o in owned):
                continue  # tensor parallel wants identical GPUs
            if engine in owned_enough:
                continue
            ladder = _ladder(engine, quant, (*owned, gpu))
            if not ladder:
                sweep.considered += 1
                sweep.exclude("unsupported")
                continue
            # The widest quant needs the most GPUs: start from the fewest the narrowest needs.
            owned_capacity = sum(usable_capacity(o, eng) for o in owned)
            need = min(bounds.need_bytes(q, engine) for q in ladder)
            start = _min_count(max(need - owned_capacity, 1.0), gpu, engine)
            room = limit - len(owned)
            counts = _counts(m, gpu, engine, start, room) if not owned else list(range(start, room + 1))
            skipped = min(start, room + 1) - 1
            if skipped > 0:  # counts the memory lower bound rules out, never estimated
                sweep.considered += skipped * len(ladder)
                sweep.exclude("memory", skipped * len(ladder))
            if not counts:
                sweep.considered += len(ladder)
                if start > room and not owned and eng.family == VLLM and gpu.gpu_class == "datacenter":
                    _sweep_nodes(gpu, engine, quant, inputs, bounds, catalog, prices, sweep, out, prefer=prefer)
                else:
                    sweep.exclude("memory" if start > room else "unsupported", len(ladder))
                    if start > room:
                        sweep.miss(
                            f"{room}x {gpu.id}",
                            ladder[-1].id,
                            engine,
                            None,
                            [(f"needs at least {start} GPUs, more than {room}", _over(start, room))],
                        )
                continue
            for n in counts:
                rig = Rig(gpus=(*owned, *(gpu,) * n))
                fitted = _sweep_rig(
                    rig, len(owned), (engine,), quant, inputs, bounds, catalog, prices, sweep, out, prefer=prefer
                )
                # A layer split only adds capacity: once it fits, more of the same GPU is never
                # better.  Tensor parallel may be faster with more GPUs (unless ranking by cost).
                if fitted and (stop_at_first_fit or eng.family != VLLM or owned):
                    break
    return out


def _sweep_nodes(
    gpu: GPU,
    engine: str,
    quant: str,
    inputs: _Inputs,
    bounds: _Bounds,
    catalog: Catalog,
    prices: Mapping[str, float],
    sweep: _Sweep,
    out: list[Recommendation],
    *,
    prefer: str,
) -> None:
    """Nodes of eight datacentre GPUs (tensor parallel inside, pipeline across) for models one
    box cannot hold."""
    for nodes in range(2, MAX_NODES + 1):
        rig = Rig(gpus=(gpu,) * MAX_GPUS_PER_BOX, nodes=nodes)
        if _sweep_rig(rig, 0, (engine,), quant, inputs, bounds, catalog, prices, sweep, out, prefer=prefer):
            return


# ---------------------------------------------------------------------------------------------
# Ranking and explanations
# ---------------------------------------------------------------------------------------------


def _value(r: Recommendation) -> float | None:
    t = r.throughput_tokens_per_s
    return t / r.cost_usd if t and r.cost_usd else None


def _efficiency(r: Recommendation) -> float | None:
    t = r.throughput_tokens_per_s
    return t / r.power.workload_wall_watts if t and r.power.workload_wall_watts else None


def _key(objective: str) -> Callable[[Recommendation], tuple[Any, ...]]:
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
        return lambda r: (_value(r) is None, not r.cost_complete, -(_value(r) or 0.0), *cost(r), bits(r))
    if objective == "efficiency":
        return lambda r: (_efficiency(r) is None, -(_efficiency(r) or 0.0), *cost(r), bits(r))
    return lambda r: (*cost(r), bits(r), speed(r))


def _fullest(r: Recommendation) -> tuple[float, int, int]:
    d = max(r.estimate.memory.devices, key=lambda x: x.total_bytes / x.usable_bytes if x.usable_bytes else 9.0)
    return (d.total_bytes / d.usable_bytes if d.usable_bytes else 9.0), d.total_bytes, d.usable_bytes


def _spare_context(r: Recommendation, inputs: _Inputs) -> int | None:
    """Extra tokens of context (per user) the fullest GPU still has room for (non-pooled engines)."""
    mem = r.estimate.memory
    if mem.kv_pool_tokens is not None:
        return None
    spare = None
    for d in mem.devices:
        if not d.kv_cache_bytes:
            continue
        per_token = d.kv_cache_bytes / (inputs.context * inputs.users)
        tokens = int((d.usable_bytes - d.total_bytes) / per_token) if per_token else None
        if tokens is not None:
            spare = tokens if spare is None else min(spare, tokens)
    return spare


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _why(r: Recommendation, rank: int, ranked: Sequence[Recommendation], inputs: _Inputs) -> list[str]:
    m = inputs.model
    out = []
    first = ranked[0]
    n = len(ranked)
    cost = format_usd(r.cost_usd) + ("" if r.cost_complete else " + platform (price unknown)")
    if inputs.objective == "cheapest" or r.decode_tokens_per_s is None:
        if rank == 1:
            out.append(f"Cheapest of {n} qualifying rig{'s' if n > 1 else ''}: {cost}.")
        elif r.cost_usd is not None and first.cost_usd is not None:
            out.append(
                f"{_ordinal(rank)} cheapest: {cost}, {format_usd(r.cost_usd - first.cost_usd)} more than the first."
            )
        else:
            out.append(f"{_ordinal(rank)} of {n}: {cost}.")
    elif inputs.objective == "fastest":
        lead = "Fastest" if rank == 1 else f"{_ordinal(rank)} fastest"
        out.append(f"{lead} of {n}: {format_rate(r.decode_tokens_per_s)} per user for {cost}.")
    elif inputs.objective == "value":
        v = _value(r)
        out.append(
            f"{'Best' if rank == 1 else _ordinal(rank) + ' best'} value of {n}: "
            + (f"{v * 1000:.1f} tok/s per $1,000" if v else "value unknown")
            + f" ({cost})."
        )
    else:
        e = _efficiency(r)
        out.append(
            f"{'Most' if rank == 1 else _ordinal(rank) + ' most'} efficient of {n}: "
            + (f"{e:.3f} tokens per joule at the wall" if e else "efficiency unknown")
            + f" ({cost})."
        )
    share, total, usable = _fullest(r)
    mem = r.estimate.memory
    gpus = r.rig.gpu_count
    line = (
        f"{m.id} at {r.quant.id} is {format_gib(mem.weights_bytes)} of weights; on {gpus} GPU{'s' if gpus > 1 else ''} "
        f"the fullest holds {format_gib(total)} of {format_gib(usable)} ({share:.0%})"
    )
    spare = _spare_context(r, inputs)
    if mem.kv_pool_tokens is not None:
        line += (
            f"; the KV pool keeps {mem.kv_pool_tokens:,} tokens = {mem.max_concurrent_sequences} sequences of "
            f"{inputs.context:,}"
        )
    ram = next((c for c in r.cost_items if c.kind == "ram"), None)
    if mem.kv_pool_tokens is None and spare is not None and spare > 0 and ram is None:
        line += f", room for ~{spare:,} more tokens of context per user"
    out.append(line + ".")
    if mem.host_bytes and ram is not None:
        moe = " (MoE experts in RAM: llama.cpp -ncmoe / --override-tensor exps=CPU)" if m.is_moe else ""
        out.append(
            f"{format_gib(mem.host_bytes)} of it lives in {ram.item}{moe}: llama.cpp -ngl "
            f"{mem.placement.gpu_layers}; decode reads the host part at the RAM's bandwidth."
        )
    s = r.estimate.speed
    if s.decode_tokens_per_s is not None:
        rng = s.decode_tokens_per_s_range
        text = f"Decodes ~{format_rate(s.decode_tokens_per_s)} per user"
        if rng:
            text += f" ({rng[0]:.3g}–{rng[1]:.3g})"
        if inputs.users > 1 and s.decode_throughput_tokens_per_s:
            text += f", {format_rate(s.decode_throughput_tokens_per_s)} for {inputs.users} users"
        if s.ttft_s is not None:
            text += f"; first token in {s.ttft_s:.2f} s"
        out.append(text + f" ({s.engine_profile}).")
    p = r.power
    if p.psu_watts is not None:
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
        out.append(
            f"{p.board_watts:,} W of GPUs (~{p.draw_watts:,} W while decoding); {psu} ATX 3.x PSU"
            + (f" with {conn}" if conn else "")
            + f"; {p.wall_watts:,} W at the wall at full load, {where}"
            + (" per node" if p.nodes > 1 else "")
            + "."
        )
    fit = r.platform
    if fit is not None:
        out.append(
            f"{fit.platform.name}: PCIe {fit.pcie_generation}.0 x{fit.lanes_per_gpu} per GPU, {fit.nvlink.describe()}"
            + (
                " (layer split passes only activations between GPUs, so lanes matter little)."
                if r.estimate.memory.placement.split == "layer" and gpus > 1
                else "."
            )
        )
    if r.energy_usd_per_million_tokens is not None:
        out.append(
            f"Electricity: ${r.energy_usd_per_million_tokens:,.2f} per million tokens "
            f"(${r.energy_usd_per_hour:,.2f} an hour at ~{p.workload_wall_watts:,} W)."
        )
    return out


def _avoid_if(r: Recommendation, inputs: _Inputs) -> list[str]:
    out = []
    share, _, _ = _fullest(r)
    spare = _spare_context(r, inputs)
    mem = r.estimate.memory
    if mem.max_concurrent_sequences is not None:
        # A pooled engine claims its whole share of memory; what matters is how many sequences fit.
        if mem.max_concurrent_sequences < POOL_HEADROOM * inputs.users:
            out.append(
                f"you need more than {mem.max_concurrent_sequences} users at {inputs.context:,} tokens of "
                "context: the KV pool holds no more."
            )
    elif share >= TIGHT_MEMORY_SHARE:
        more = f"more than ~{spare:,} extra tokens of context" if spare is not None else "more context or users"
        out.append(f"you need {more}: the fullest GPU is {share:.0%} full.")
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
    eng = get_engine(r.engine)
    if (
        eng.family == VLLM
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


def _next_step(r: Recommendation, pool: Sequence[Recommendation]) -> str | None:
    """The cheapest pricier rig that is faster (or, without speeds, holds more)."""
    if r.cost_usd is None:
        return None
    mem = sum(g.memory_bytes for g in r.rig.all_gpus)
    better = []
    for o in pool:
        if o.cost_usd is None or o.cost_usd <= r.cost_usd or o.rig.describe() == r.rig.describe():
            continue
        faster = (o.decode_tokens_per_s or 0) > (r.decode_tokens_per_s or 0) * 1.05 if r.decode_tokens_per_s else False
        more = sum(g.memory_bytes for g in o.rig.all_gpus) > mem
        if faster or (r.decode_tokens_per_s is None and more):
            better.append(o)
    if not better:
        return None
    o = min(better, key=lambda x: (x.cost_usd or 0.0, -(x.decode_tokens_per_s or 0.0)))
    gains = []
    extra_mem = sum(g.memory_bytes for g in o.rig.all_gpus) - mem
    if extra_mem > 0:
        gains.append(f"{extra_mem / GIB:.0f} GiB more GPU memory")
    if o.decode_tokens_per_s and r.decode_tokens_per_s:
        gains.append(f"{o.decode_tokens_per_s / r.decode_tokens_per_s:.1f}× the decode speed")
    return (
        f"{o.rig.describe()} ({o.quant.id}, {o.engine}) for {format_usd(o.cost_usd)} "
        f"(+{format_usd((o.cost_usd or 0) - r.cost_usd)}) buys " + (" and ".join(gains) or "more headroom") + "."
    )


#: Unverified misses (excluded before an estimate) re-checked for memory when nothing qualifies.
NEAREST_MISS_CHECKS = 12


def _nearest_miss(sweep: _Sweep, model: Model, core: Context) -> NearestMiss | None:
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


def _dedupe(recs: Sequence[Recommendation], key: Callable[[Recommendation], tuple[Any, ...]]) -> list[Recommendation]:
    best: dict[str, Recommendation] = {}
    for r in sorted(recs, key=key):
        best.setdefault(r.rig.describe(), r)
    return sorted(best.values(), key=key)


# ---------------------------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------------------------


def _plan_context(request: PlanRequest) -> int:
    """Tokens of context per user: the request's, or the default capped at the model's maximum."""
    mdl = request.model
    ctx = request.context if request.context is not None else min(DEFAULT_CONTEXT, mdl.max_context)
    if ctx > mdl.max_context:
        raise InvalidValueError("context", f"{ctx} exceeds {mdl.id}'s maximum of {mdl.max_context} tokens")
    return ctx


def _check_plan(request: PlanRequest) -> None:
    """Checks that need the catalogue's code tables (the request checked its own values)."""
    from .arch import check_supported

    check_supported(request.model)
    if request.engine is not None:
        get_engine(request.engine)
    quant = request.quant
    if not isinstance(quant, str) or not quant.strip():
        raise InvalidValueError("quant", f"must be 'any', 4bit/8bit/16bit or a quant id, got {quant!r}")
    if quant.strip().lower() != "any":
        resolve_quant(quant, "llama.cpp")  # an unknown quant id is an error, not an empty plan
    if not request.margin < MAX_MARGIN:
        raise InvalidValueError("margin", f"must be a share of memory below {MAX_MARGIN:g}, got {request.margin!r}")
    if len(request.have) > MAX_GPUS_PER_BOX:
        raise InvalidValueError("have", f"at most {MAX_GPUS_PER_BOX} owned GPUs in one box, got {len(request.have)}")


def _plan_inputs(request: PlanRequest, context: Context) -> _Inputs:
    ctx = _plan_context(request)
    out_tokens = min(request.output_tokens, ctx)
    return _Inputs(
        model=request.model,
        context=ctx,
        users=request.users,
        prompt_tokens=min(request.prompt_tokens, ctx - out_tokens),
        output_tokens=out_tokens,
        min_tokens_per_s=request.min_tokens_per_s,
        budget_usd=request.budget_usd,
        max_watts=request.max_watts,
        circuit=request.circuit,
        max_gpus=request.max_gpus,
        gpu_class=request.gpu_class,
        platform_class=request.platform,
        nvlink=request.nvlink,
        objective=request.objective,
        kwh_price=request.kwh_price,
        core=context,
        condition=request.condition,
        margin=request.margin,
        host=request.host,
        include_discontinued=request.include_discontinued,
    )


def _plan_notes(objective: str, recs: Sequence[Recommendation], chosen: Sequence[Recommendation]) -> list[str]:
    notes: list[str] = []
    if objective != "cheapest" and recs and all(r.decode_tokens_per_s is None for r in recs):
        notes.append(f"No speed estimates are available, so '{objective}' is ranked by cost instead.")
    if chosen and not notes and all(r.decode_tokens_per_s is None for r in chosen):
        notes.append("These estimates carry no speed (the speed model gave none).")
    if any(r.cost_usd is None for r in chosen):
        notes.append(
            "Rigs with a GPU that has no sourced price are listed after priced ones; give a price with --price GPU=USD."
        )
    if any(not r.cost_complete for r in chosen):
        notes.append("Some platforms have no sourced price: their cost covers GPUs and PSU only.")
    return notes


def _constraints(request: PlanRequest, inputs: _Inputs, engines: Sequence[str]) -> dict[str, Any]:
    return {
        "quant": request.quant,
        "context": inputs.context,
        "users": request.users,
        "min_tokens_per_s": request.min_tokens_per_s,
        "budget_usd": request.budget_usd,
        "max_watts": request.max_watts,
        "circuit": request.circuit,
        "max_gpus": request.max_gpus,
        "gpu_class": request.gpu_class,
        "platform": request.platform,
        "nvlink": request.nvlink,
        "have": [g.id for g in request.have] + ([request.host.describe()] if request.host else []),
        "condition": request.condition,
        "margin": request.margin,
        "engines": list(engines),
        "prices": dict(sorted(request.prices.items())),
        "kwh_price": request.kwh_price,
        "prompt_tokens": inputs.prompt_tokens,
        "output_tokens": inputs.output_tokens,
    }


def plan(request: PlanRequest, context: Context, progress: Callable[[int, int], None] | None = None) -> Plan:
    """The pure core of :func:`rigplan.plan_rigs`: sweep, rank and explain (``elapsed_s`` is 0;
    the edge times the call).

    Raises:
        RigplanError: an unknown engine or quant, an unsupported architecture, too many owned GPUs.
    """
    _check_plan(request)
    inputs = _plan_inputs(request, context)
    engines = _engines(request.engine, request.have)
    sweep = _Sweep()
    prices = dict(request.prices)
    recs = _enumerate(inputs, engines, request.quant, request.have, context.catalog, prices, sweep, progress)
    if "llama.cpp" in engines and not request.have:
        recs += _sweep_offload(inputs, request.quant, context.catalog, prices, sweep)
    effective = request.objective
    if effective != "cheapest" and recs and all(r.decode_tokens_per_s is None for r in recs):
        effective = "cheapest"
    key = _key(effective)
    ranked = _dedupe(recs, key)
    chosen = ranked[: request.top]
    view = dataclasses.replace(inputs, objective=effective)
    final = tuple(
        dataclasses.replace(
            r,
            why=tuple(_why(r, i + 1, ranked, view)),
            avoid_if=tuple(_avoid_if(r, view)),
            next_step=_next_step(r, ranked),
        )
        for i, r in enumerate(chosen)
    )
    return Plan(
        model=request.model.id,
        objective=effective,
        constraints=_constraints(request, inputs, engines),
        recommendations=final,
        considered=sweep.considered,
        qualified=len(ranked),
        estimated=sweep.estimated,
        excluded={k: sweep.excluded[k] for k in CONSTRAINTS if k in sweep.excluded},
        nearest_miss=_nearest_miss(sweep, request.model, context) if not final else None,
        notes=tuple(_plan_notes(request.objective, recs, chosen)),
        elapsed_s=0.0,
    )


__all__ = [
    "OBJECTIVES",
    "CostItem",
    "NearestMiss",
    "Plan",
    "Recommendation",
    "parse_price_overrides",
    "plan",
]
