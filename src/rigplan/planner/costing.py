"""What a rig costs: GPU prices (catalogue, the user's, owned), platform, PSU, electricity.

The ``catalog`` work changes these places (platform chosen by price, ``--have``, offload rigs):
:func:`rig_cost` prices one rig, :func:`gpu_price` one GPU, :func:`psu_cost` the PSU.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..catalog import load_catalog
from ..catalog.query import best_price
from ..catalog.records import GPU, Catalog, Price
from ..errors import DataFileError, InvalidValueError, UnknownNameError
from ..platforms import PSU_INCLUDED_W, PlatformFit
from ..power import PowerEstimate
from ..rig import Rig, resolve_gpu
from .records import CostItem

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


def gpu_price(gpu: GPU, catalog: Catalog, prices: Mapping[str, float]) -> CostItem:
    if gpu.id in prices:
        return CostItem(gpu.id, prices[gpu.id], "yours", "your price (--price or config.toml [prices])")
    p: Price | None = best_price(catalog, gpu.id)
    if p is None:
        return CostItem(gpu.id, None, "unknown", "no sourced price (give one with --price)")
    return CostItem(gpu.id, p.usd, p.kind, p.source, p.as_of.isoformat())


def rig_cost(
    rig: Rig,
    owned: int,
    fit: PlatformFit | None,
    power: PowerEstimate,
    catalog: Catalog,
    prices: Mapping[str, float],
) -> tuple[float | None, bool, tuple[CostItem, ...]]:
    """(cost of what must be bought or None if a GPU is unpriced, whether the cost is complete,
    the lines).  Owned GPUs cost nothing; a platform with no sourced price is left out."""
    items: list[CostItem] = []
    counts: dict[str, int] = {}
    for g in rig.gpus[owned:]:
        counts[g.id] = counts.get(g.id, 0) + 1
    by_id = {g.id: g for g in rig.gpus}
    gpu_total: float | None = 0.0
    for gid, n in counts.items():
        line = gpu_price(by_id[gid], catalog, prices)
        usd = None if line.usd is None else line.usd * n * rig.nodes
        items.append(dataclasses.replace(line, item=f"{n * rig.nodes}x {gid}", usd=usd))
        gpu_total = None if gpu_total is None or usd is None else gpu_total + usd
    for g in rig.gpus[:owned]:
        items.append(CostItem(f"1x {g.id}", 0.0, "owned", "already owned (--have)"))
    complete = True
    extra = 0.0
    if fit is not None:
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
