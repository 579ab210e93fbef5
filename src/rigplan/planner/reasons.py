"""Why each pick wins, when to avoid it and the next step up: structured reasons, no prose.

Each :class:`Reason` is a code and the facts behind it (numbers, ids, flags); the words are
written by :mod:`rigplan.present`, which the CLI and the web page share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engines import VLLM, get_engine
from ..units import GIB
from .rank import tokens_per_joule, tokens_per_s_per_usd

if TYPE_CHECKING:
    from .records import Recommendation
    from .sweep import Inputs

#: A GPU whose fullest memory is above this share is flagged: little room for more context.
TIGHT_MEMORY_SHARE = 0.9
#: A pooled engine whose KV pool holds fewer than this many times the users asked for is flagged.
POOL_HEADROOM = 2
#: A launch price older than this (years before the price's date) is flagged as likely stale.
STALE_LAUNCH_YEARS = 3
#: A pricier rig is a "next step up" when it decodes this much faster (5 %: beyond noise).
NEXT_STEP_SPEEDUP = 1.05


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason: a code (``rank``, ``memory``, ``used_price`` ...) and its facts."""

    code: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.facts[key]

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, **self.facts}


def fullest_gpu(r: Recommendation) -> tuple[float, int, int]:
    """(share used, bytes used, usable bytes) of the rig's fullest GPU."""
    d = max(r.estimate.memory.devices, key=lambda x: x.total_bytes / x.usable_bytes if x.usable_bytes else 9.0)
    return (d.total_bytes / d.usable_bytes if d.usable_bytes else 9.0), d.total_bytes, d.usable_bytes


def spare_context(r: Recommendation, inputs: Inputs) -> int | None:
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


def _rank_reason(r: Recommendation, rank: int, ranked: Sequence[Recommendation], inputs: Inputs) -> Reason:
    objective = inputs.objective if r.decode_tokens_per_s is not None else "cheapest"
    facts: dict[str, Any] = {
        "objective": objective,
        "rank": rank,
        "of": len(ranked),
        "cost_usd": r.cost_usd,
        "cost_complete": r.cost_complete,
        "first_cost_usd": ranked[0].cost_usd,
        "decode_tokens_per_s": r.decode_tokens_per_s,
        "tokens_per_s_per_usd": tokens_per_s_per_usd(r),
        "tokens_per_joule": tokens_per_joule(r),
    }
    return Reason("rank", facts)


def _memory_reason(r: Recommendation, inputs: Inputs) -> Reason:
    share, total, usable = fullest_gpu(r)
    mem = r.estimate.memory
    return Reason(
        "memory",
        {
            "model": inputs.model.id,
            "quant": r.quant.id,
            "weights_bytes": mem.weights_bytes,
            "gpus": r.rig.gpu_count,
            "fullest_bytes": total,
            "fullest_usable_bytes": usable,
            "fullest_share": share,
            "kv_pool_tokens": mem.kv_pool_tokens,
            "max_concurrent_sequences": mem.max_concurrent_sequences,
            "context": inputs.context,
            "spare_context_tokens": spare_context(r, inputs),
        },
    )


def _speed_reason(r: Recommendation, inputs: Inputs) -> Reason | None:
    s = r.estimate.speed
    if s.decode_tokens_per_s is None:
        return None
    rng = s.decode_tokens_per_s_range
    return Reason(
        "speed",
        {
            "decode_tokens_per_s": s.decode_tokens_per_s,
            "decode_tokens_per_s_range": list(rng) if rng else None,
            "users": inputs.users,
            "decode_throughput_tokens_per_s": s.decode_throughput_tokens_per_s,
            "ttft_s": s.ttft_s,
            "engine_profile": s.engine_profile,
        },
    )


def _power_reason(r: Recommendation) -> Reason | None:
    p = r.power
    if p.psu_watts is None:
        return None
    circuit = "120v15a" if p.circuits["120v15a"].fits else None
    if circuit is None and (p.circuits["120v20a"].fits or p.circuits["230v16a"].fits):
        circuit = "120v20a-or-230v"
    return Reason(
        "power",
        {
            "board_watts": p.board_watts,
            "draw_watts": p.draw_watts,
            "psu_watts": p.psu_watts,
            "psu_units": p.psu_units,
            "connectors": dict(p.connectors),
            "wall_watts": p.wall_watts,
            "circuit": circuit,  # the smallest that carries it; None: several circuits
            "circuit_120v15a_watts": p.circuits["120v15a"].capacity_watts,
            "nodes": p.nodes,
        },
    )


def _platform_reason(r: Recommendation) -> Reason | None:
    fit = r.platform
    if fit is None:
        return None
    return Reason(
        "platform",
        {
            "platform": fit.platform.name,
            "pcie_generation": fit.pcie_generation,
            "lanes_per_gpu": fit.lanes_per_gpu,
            "nvlink": fit.nvlink.describe(),
            "layer_split": r.estimate.memory.placement.split == "layer" and r.rig.gpu_count > 1,
        },
    )


def _energy_reason(r: Recommendation) -> Reason | None:
    if r.energy_usd_per_million_tokens is None:
        return None
    return Reason(
        "electricity",
        {
            "usd_per_million_tokens": r.energy_usd_per_million_tokens,
            "usd_per_hour": r.energy_usd_per_hour,
            "workload_wall_watts": r.power.workload_wall_watts,
        },
    )


def why_reasons(r: Recommendation, rank: int, ranked: Sequence[Recommendation], inputs: Inputs) -> tuple[Reason, ...]:
    """Why ``r`` (ranked ``rank`` of ``ranked``) is worth buying: rank, memory, speed, power,
    platform and electricity, in that order."""
    found = [
        _rank_reason(r, rank, ranked, inputs),
        _memory_reason(r, inputs),
        _speed_reason(r, inputs),
        _power_reason(r),
        _platform_reason(r),
        _energy_reason(r),
    ]
    return tuple(x for x in found if x is not None)


def _memory_warnings(r: Recommendation, inputs: Inputs) -> list[Reason]:
    mem = r.estimate.memory
    if mem.max_concurrent_sequences is not None:
        # A pooled engine claims its whole share of memory; what matters is how many sequences fit.
        if mem.max_concurrent_sequences < POOL_HEADROOM * inputs.users:
            return [
                Reason(
                    "kv_pool_full",
                    {"max_concurrent_sequences": mem.max_concurrent_sequences, "context": inputs.context},
                )
            ]
        return []
    share, _, _ = fullest_gpu(r)
    if share >= TIGHT_MEMORY_SHARE:
        return [Reason("memory_tight", {"spare_context_tokens": spare_context(r, inputs), "fullest_share": share})]
    return []


def _price_warnings(r: Recommendation) -> list[Reason]:
    out = []
    for c in r.cost_items:
        if c.kind == "used":
            out.append(Reason("used_price", {"item": c.item, "as_of": c.as_of}))
        elif c.kind == "unknown" and c.item.startswith("platform"):
            out.append(Reason("platform_price_unknown", {"platform": c.item.removeprefix("platform ")}))
        elif c.kind == "launch":
            gpu = next((g for g in r.rig.gpus if c.item.endswith(g.id)), None)
            if gpu and c.as_of and int(c.as_of[:4]) - gpu.launch_year >= STALE_LAUNCH_YEARS:
                out.append(Reason("stale_launch_price", {"gpu": gpu.id, "launch_year": gpu.launch_year}))
    return out


def _build_warnings(r: Recommendation) -> list[Reason]:
    out = []
    if any(g.cooling == "passive" for g in r.rig.gpus):
        out.append(Reason("passive_cooling"))
    fit = r.platform
    if fit is not None and fit.needs_risers:
        out.append(Reason("needs_risers"))
    if fit is not None and any("recirculate" in n for n in fit.notes):
        out.append(Reason("poor_airflow"))
    circuit = r.power.circuits["120v15a"]
    if not circuit.fits:
        out.append(Reason("over_120v15a", {"wall_watts": circuit.wall_watts}))
    if (
        get_engine(r.engine).family == VLLM
        and r.rig.gpus_per_node > 1
        and not all(g.p2p_stock_driver for g in r.rig.gpus)
        and (fit is None or fit.nvlink.kind == "none")
    ):
        out.append(Reason("no_p2p"))
    if any(g.is_apple for g in r.rig.gpus):
        out.append(Reason("apple"))
    return out


def avoid_reasons(r: Recommendation, inputs: Inputs) -> tuple[Reason, ...]:
    """When to avoid ``r``: tight memory, doubtful prices, cooling, circuits, links, Apple."""
    return (*_memory_warnings(r, inputs), *_price_warnings(r), *_build_warnings(r))


def next_step_reason(r: Recommendation, pool: Sequence[Recommendation]) -> Reason | None:
    """The cheapest pricier rig that is faster (or, without speeds, holds more)."""
    if r.cost_usd is None:
        return None
    mem = sum(g.memory_bytes for g in r.rig.all_gpus)
    better = []
    for o in pool:
        if o.cost_usd is None or o.cost_usd <= r.cost_usd or o.rig.describe() == r.rig.describe():
            continue
        faster = (
            (o.decode_tokens_per_s or 0) > (r.decode_tokens_per_s or 0) * NEXT_STEP_SPEEDUP
            if r.decode_tokens_per_s
            else False
        )
        more = sum(g.memory_bytes for g in o.rig.all_gpus) > mem
        if faster or (r.decode_tokens_per_s is None and more):
            better.append(o)
    if not better:
        return None
    o = min(better, key=lambda x: (x.cost_usd or 0.0, -(x.decode_tokens_per_s or 0.0)))
    extra_mem = sum(g.memory_bytes for g in o.rig.all_gpus) - mem
    speedup = None
    if o.decode_tokens_per_s and r.decode_tokens_per_s:
        speedup = o.decode_tokens_per_s / r.decode_tokens_per_s
    return Reason(
        "next_step",
        {
            "rig": o.rig.describe(),
            "quant": o.quant.id,
            "engine": o.engine,
            "cost_usd": o.cost_usd,
            "extra_usd": (o.cost_usd or 0) - r.cost_usd,
            "extra_memory_gib": extra_mem / GIB if extra_mem > 0 else 0.0,
            "speedup": speedup,
        },
    )
