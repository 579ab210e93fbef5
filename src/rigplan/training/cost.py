"""What a training run costs a buyer: the whole machine, its electricity, and renting instead.

* Buying: per node, the GPUs at the catalogue's (or the user's) price, the platform and PSU a
  node of them needs (the planner's :func:`~rigplan.platforms.choose_platform` and
  :func:`~rigplan.planner.psu_cost`), or for SXM GPUs the whole 8-GPU system (DGX / HGX, which
  includes its GPUs, from ``catalog/data/rental.toml``).  Inter-node networking has no sourced
  price and is listed as unpriced.
* Electricity over the run: the machine's wall power in training × time × $/kWh.
* Renting: the same GPUs by the hour, on demand and spot (dated, sourced; user-overridable).
* Break-even: runs after which buying (machine + its electricity) costs less than renting.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..catalog.query import best_price
from ..catalog.records import Catalog
from ..catalog.rental import rental_prices, system_price
from ..planner.costing import psu_cost
from ..planner.records import CostItem
from ..platforms import PSU_INCLUDED_W, choose_platform
from ..power import estimate_power
from ..requests import TRAINING_OPTIONS
from ..rig import Rig

SECONDS_PER_HOUR = 3600
WATTS_PER_KW = 1000
# Electricity when the user gives none: the 2024 US average retail price for commercial
# customers, 12.7 ¢/kWh (EIA Electric Power Monthly, Table 5.3, annual 2024) [override with
# --kwh-price or [electricity] usd_per_kwh in the config file].
DEFAULT_USD_PER_KWH = 0.127
DEFAULT_KWH_SOURCE = "EIA Electric Power Monthly Table 5.3 (US commercial average 2024, 12.7 ¢/kWh)"
# Training keeps the GPUs at their board power (a compute-bound loop with no idle phases): the
# workload draw of rigplan.power at full load [estimate; nvidia-smi on DGX H100 training jobs
# reads 600–700 W of the 700 W limit].
TRAINING_LOAD = "full board power"


@dataclass(frozen=True, slots=True)
class RentQuote:
    tier: str
    usd_per_gpu_hour: float
    provider: str
    source: str
    as_of: str
    user: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "usd_per_gpu_hour": self.usd_per_gpu_hour,
            "provider": self.provider,
            "source": self.source,
            "as_of": self.as_of,
            "yours": self.user,
        }


@dataclass(frozen=True, slots=True)
class TrainingCost:
    """Buy vs rent for one run (None where a price is unknown; the notes say which)."""

    machine_usd: float | None
    machine_items: tuple[CostItem, ...]
    unpriced: tuple[str, ...]
    wall_watts: int
    energy_kwh: float | None
    usd_per_kwh: float
    kwh_source: str
    rent: tuple[RentQuote, ...]
    run_hours: float | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def buy_usd(self) -> float | None:
        return self.machine_usd

    @property
    def missing_prices(self) -> tuple[str, ...]:
        """Items with no price that leave the machine cost unknown."""
        return tuple(i.item for i in self.machine_items if i.usd is None)

    @property
    def electricity_usd(self) -> float | None:
        return None if self.energy_kwh is None else self.energy_kwh * self.usd_per_kwh

    def rent_usd(self, tier: str, gpus: int) -> float | None:
        for q in self.rent:
            if q.tier == tier and self.run_hours is not None:
                return q.usd_per_gpu_hour * gpus * self.run_hours
        return None

    def break_even_runs(self, gpus: int) -> float | None:
        """Runs after which buying costs less than renting on demand (None: never or unknown)."""
        rent = self.rent_usd("on-demand", gpus)
        power = self.electricity_usd
        if self.machine_usd is None or rent is None or power is None or rent <= power:
            return None
        return self.machine_usd / (rent - power)

    def to_dict(self, gpus: int) -> dict[str, Any]:
        runs = self.break_even_runs(gpus)
        return {
            "machine_usd": self.machine_usd,
            "machine_items": [i.to_dict() for i in self.machine_items],
            "unpriced": list(self.unpriced),
            "wall_watts": self.wall_watts,
            "energy_kwh": self.energy_kwh,
            "usd_per_kwh": self.usd_per_kwh,
            "kwh_source": self.kwh_source,
            "electricity_usd": self.electricity_usd,
            "rent": [q.to_dict() for q in self.rent],
            "rent_on_demand_usd": self.rent_usd("on-demand", gpus),
            "rent_spot_usd": self.rent_usd("spot", gpus),
            "break_even_runs": None if runs is None else math.ceil(runs),
            "notes": list(self.notes),
        }


def _gpu_line(gpu_id: str, n: int, catalog: Catalog, prices: Mapping[str, float], owned: int = 0) -> CostItem:
    """``n`` GPUs, of which ``owned`` are already paid for (priced per GPU, also for sale units)."""
    name = f"{n}x {gpu_id}" + (f" ({owned} yours)" if owned else "")
    if gpu_id in prices:
        return CostItem(name, prices[gpu_id] * (n - owned), "yours", "your price (config.toml [prices])")
    p = best_price(catalog, gpu_id)
    if p is None:
        usd = 0.0 if owned >= n else None
        return CostItem(name, usd, "unknown", "no sourced price (add one to config.toml [prices])")
    return CostItem(name, p.usd_per_gpu * (n - owned), p.kind, p.source, p.as_of.isoformat())


def _node_items(
    rig: Rig, catalog: Catalog, prices: Mapping[str, float], owned: int = 0, owns_host: bool = False
) -> tuple[list[CostItem], list[str]]:
    """Cost lines of one node, and what could not be priced (``owned`` GPUs and an owned host
    cost nothing)."""
    gpus = rig.gpus
    gpu = gpus[0]
    unpriced: list[str] = []
    system = system_price(gpu.id, len(gpus)) if gpu.form_factor in ("sxm", "oam") else None
    if system is not None and gpu.id not in prices and not owned:
        item = CostItem(
            f"{system.system} ({len(gpus)}x {gpu.id} included)",
            system.usd,
            "system",
            system.source,
            system.as_of.isoformat(),
        )
        return [item], unpriced
    items = [_gpu_line(gpu.id, len(gpus), catalog, prices, owned)]
    if gpu.is_system:  # the price is the whole machine (board, memory, power supply)
        return items, unpriced
    if gpu.form_factor in ("sxm", "oam"):
        unpriced.append(f"{len(gpus)}-GPU baseboard server for {gpu.id} (no sourced price without its GPUs)")
        return items, unpriced
    if owns_host:
        return items, unpriced
    fit, _ = choose_platform(gpus, catalog.platforms.values())
    if fit is None:
        unpriced.append("no catalogue platform takes these GPUs")
        return items, unpriced
    if fit.cost_usd is None:
        unpriced.append(f"platform {fit.platform.id} (no sourced price)")
    else:
        items.append(
            CostItem(
                f"platform {fit.platform.id}",
                fit.cost_usd,
                "platform",
                fit.platform.source,
                fit.platform.as_of.isoformat(),
            )
        )
    power = estimate_power(dataclasses.replace(rig, nodes=1), platform=fit.platform)
    if (
        power.psu_watts is not None
        and fit.platform.gpu_slots > 0
        and power.psu_watts > PSU_INCLUDED_W.get(fit.platform.id, 0)
    ):
        items.append(psu_cost(power.psu_watts, power.psu_units))
    return items, unpriced


def _rent_quotes(gpu_id: str, rental: Mapping[str, float]) -> tuple[RentQuote, ...]:
    quotes = []
    for tier in ("on-demand", "spot"):
        if tier == "on-demand" and gpu_id in rental:
            quotes.append(RentQuote(tier, rental[gpu_id], "yours", "config.toml [rental]", "", True))
            continue
        rows = rental_prices(gpu_id, tier)
        if rows:
            r = rows[0]
            quotes.append(RentQuote(tier, r.usd_per_gpu_hour, r.provider, r.source, r.as_of.isoformat()))
    return tuple(quotes)


def training_cost(
    rig: Rig,
    catalog: Catalog,
    time_s: float | None,
    *,
    prices: Mapping[str, float] | None = None,
    rental: Mapping[str, float] | None = None,
    usd_per_kwh: float | None = None,
    owned: int = 0,
    owns_host: bool = False,
) -> TrainingCost:
    """Buy (whole machine), electricity over ``time_s`` and rent for ``rig`` (pure: prices given).

    ``owned`` / ``owns_host``: GPUs and a PC (platform and PSU) of a one-node rig the buyer
    already has; only the rest is priced.
    """
    prices, rental = prices or {}, rental or {}
    one = rig.nodes == 1
    node_items, unpriced = _node_items(rig, catalog, prices, owned if one else 0, owns_host and one)
    items: list[CostItem] = []
    for it in node_items:
        usd = None if it.usd is None else it.usd * rig.nodes
        name = it.item if rig.nodes == 1 else f"{it.item} × {rig.nodes} nodes"
        items.append(CostItem(name, usd, it.kind, it.source, it.as_of))
    if rig.nodes > 1:
        unpriced.append(f"{rig.network} network between {rig.nodes} nodes (NICs, switches, cables: no sourced price)")
    total: float | None = sum(i.usd for i in items if i.usd is not None)
    if any(i.usd is None for i in items):
        total = None
    power = estimate_power(rig)
    # Training runs the GPUs at their board power; the rest of the machine as power.py estimates.
    wall = power.wall_watts
    hours = None if time_s is None else time_s / SECONDS_PER_HOUR
    kwh = None if hours is None else wall / WATTS_PER_KW * hours
    TRAINING_OPTIONS["kwh_price"].check(usd_per_kwh)
    rate = DEFAULT_USD_PER_KWH if usd_per_kwh is None else usd_per_kwh
    source = DEFAULT_KWH_SOURCE if usd_per_kwh is None else "your price (--kwh-price / config.toml [electricity])"
    notes = []
    if unpriced:
        notes.append("not priced: " + "; ".join(unpriced))
    return TrainingCost(
        machine_usd=total,
        machine_items=tuple(items),
        unpriced=tuple(unpriced),
        wall_watts=wall,
        energy_kwh=kwh,
        usd_per_kwh=rate,
        kwh_source=source,
        rent=_rent_quotes(rig.gpus[0].id, rental),
        run_hours=hours,
        notes=tuple(notes),
    )
