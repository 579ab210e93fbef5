"""The state of one sweep: the plan's inputs, what each constraint excluded, the misses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..catalog.records import Model
from ..core import Context
from ..headroom import DEFAULT_MARGIN
from ..owned_host import OwnedHost
from ..rig import Rig

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


#: An unpriced rig is a poor "nearest miss" under a budget: rank it after any priced one.
UNKNOWN_PRICE_SEVERITY = 1e6


def over(value: float, limit: float) -> float:
    """How far ``value`` is over ``limit``, relative (0.1 = 10 % over; 0 if under)."""
    return max(value / limit - 1.0, 0.0) if limit > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class Miss:
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
class Sweep:
    """Mutable state of one sweep (counts of exclusions, misses for the nearest-miss report)."""

    excluded: dict[str, int] = field(default_factory=dict)
    considered: int = 0
    estimated: int = 0
    misses: list[Miss] = field(default_factory=list)

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
                Miss(
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
class Inputs:
    """The plan's request, resolved: the context and token counts to plan for, the limits."""

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
