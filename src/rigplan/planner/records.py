"""The planner's records: a rig's cost lines, one recommendation, the nearest miss, the plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..platforms import PlatformFit
from ..power import PowerEstimate
from ..quant import Quant
from ..results import Estimate, per_user_speed
from ..rig import Rig

#: What a recommendation's :attr:`Recommendation.speed` is (``speed_basis`` in the plan JSON): for
#: one user the decode speed; for several, each user's steady speed with the other users' prompts
#: prefilled (:func:`rigplan.results.per_user_speed`, what ``--min-tok-s`` checks).
SPEED_BASIS_DECODE = "decode"
SPEED_BASIS_PER_USER = "per-user, prompts included"


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
    #: 1-based place under the plan's objective (0 before the plan numbers it)
    rank: int = 0
    #: the other objectives ("value", "fastest") under which this is the best qualifying rig
    best_by: tuple[str, ...] = ()
    #: ``best_by`` in words ("best value, fastest"), filled in by rigplan.present
    standout: str | None = None

    @property
    def rig_text(self) -> str:
        return self.rig.describe()

    @property
    def decode_tokens_per_s(self) -> float | None:
        return self.estimate.speed.decode_tokens_per_s

    @property
    def speed_basis(self) -> str:
        """Which speed :attr:`speed` is: :data:`SPEED_BASIS_PER_USER` when the plan is for several
        users (the estimate's batch), else :data:`SPEED_BASIS_DECODE`."""
        return SPEED_BASIS_PER_USER if self.estimate.workload.batch > 1 else SPEED_BASIS_DECODE

    @property
    def speed(self) -> tuple[float | None, tuple[float, float] | None]:
        """(tok/s per user, its range): the one speed a plan shows, ranks ("fastest", the next step
        up, ties under "cheapest") and quotes.  For several users it is the speed ``--min-tok-s``
        checks, prompts included, so the table and the check agree; for one user the decode speed."""
        if self.speed_basis == SPEED_BASIS_PER_USER:
            return per_user_speed(self.estimate)
        s = self.estimate.speed
        return s.decode_tokens_per_s, s.decode_tokens_per_s_range

    @property
    def speed_tokens_per_s(self) -> float | None:
        """The value of :attr:`speed` (None: the speed model gave none)."""
        return self.speed[0]

    @property
    def throughput_tokens_per_s(self) -> float | None:
        s = self.estimate.speed
        return s.decode_throughput_tokens_per_s or s.decode_tokens_per_s

    def to_dict(self) -> dict[str, Any]:
        est = self.estimate.to_dict()
        est["power"] = self.power.to_dict()
        fit = self.platform
        speed, speed_range = self.speed
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
            "speed_tokens_per_s": speed,
            "speed_tokens_per_s_range": list(speed_range) if speed_range else None,
            "speed_basis": self.speed_basis,
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
            "rank": self.rank,
            "best_by": list(self.best_by),
            "standout": self.standout,
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
    #: the best-value and fastest qualifying rigs when the top N leaves them out (``best_by`` says
    #: which, ``rank`` where they stand under the objective)
    also: tuple[Recommendation, ...] = ()
    #: every qualifying rig, best first (the picks are its head): what the explanations compare
    #: against (rank among n, the next step up); not part of the JSON
    ranked: tuple[Recommendation, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``rigplan plan --json``."""
        return {
            "model": self.model,
            "objective": self.objective,
            "constraints": self.constraints,
            "recommendations": [r.to_dict() for r in self.recommendations],
            "also_worth_a_look": [r.to_dict() for r in self.also],
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
