"""What a rig costs: GPU prices (catalogue, the user's, sale units), platform and PSU."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..catalog import load_catalog
from ..catalog.query import best_price
from ..catalog.records import GPU, Catalog, Price
from ..errors import DataFileError, InvalidValueError, UnknownNameError
from ..owned_host import OwnedHost
from ..platforms import PSU_INCLUDED_W, PlatformFit
from ..power import PowerEstimate
from ..rig import Rig, resolve_gpu
from .records import CostItem


def check_prices(prices: Mapping[str, Any], catalog: Catalog, *, where: str = "prices") -> dict[str, float]:
    """{GPU name: USD} → {GPU id: USD}, each a number of dollars above 0.

    Raises:
        UnknownGPUError / InvalidValueError: a bad ``--price``; DataFileError: a bad config row.
    """
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
    that covers its share (catalogue data: psus.toml), past the largest as several of it."""
    rows = load_catalog().psu_prices
    share = watts / max(units, 1)
    covering = [row for row in rows if share <= row.watts]
    row = covering[0] if covering else rows[-1]
    size, usd, source, as_of = row.watts, row.usd, row.source, row.as_of.isoformat()
    if not covering:
        units = math.ceil(watts / size)
    if units == 1:
        return CostItem(f"PSU for {watts:,} W (priced as a {size:,} W unit)", usd, "psu", source, as_of)
    return CostItem(f"{units} PSUs for {watts:,} W (priced as {units}x {size:,} W)", usd * units, "psu", source, as_of)


def gpu_price(
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
        line, row = gpu_price(by_id[gid], catalog, prices, condition)
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


def _owned_host_lines(fit: PlatformFit, power: PowerEstimate, host: OwnedHost, items: list[CostItem]) -> float:
    """Lines for GPUs added to the buyer's own PC: the platform is theirs, a PSU only if theirs
    is too small.  Returns what must be bought."""
    items.append(CostItem(f"platform {fit.platform.id}", 0.0, "owned", f"{host.describe()} (--have)"))
    need = power.psu_watts
    if need is not None and host.psu_watts is not None and need > host.psu_watts:
        psu = psu_cost(need, power.psu_units)
        items.append(dataclasses.replace(psu, item=psu.item + f", replacing your {host.psu_watts:,} W"))
        return psu.usd or 0.0
    if need is not None:
        known = f"your {host.psu_watts:,} W PSU" if host.psu_watts else f"your PSU (it must deliver {need:,} W)"
        items.append(CostItem(f"PSU {need:,} W", 0.0, "owned", known))
    return 0.0


def _platform_lines(rig: Rig, fit: PlatformFit, power: PowerEstimate, items: list[CostItem]) -> tuple[float, bool]:
    """Lines for a bought platform and its PSU: (what they cost, whether the platform is priced)."""
    extra = 0.0
    complete = True
    pcost = fit.cost_usd
    if pcost is None:
        complete = False
        source = f"price unknown: {fit.platform.source.split(' ; ')[0]}"
        items.append(CostItem(f"platform {fit.platform.id}", None, "unknown", source))
    else:
        extra += pcost * rig.nodes
        label = f"platform {fit.platform.id}" + (f" x{rig.nodes}" if rig.nodes > 1 else "")
        as_of = fit.platform.as_of.isoformat()
        items.append(CostItem(label, pcost * rig.nodes, "platform", fit.platform.source, as_of))
    included = PSU_INCLUDED_W.get(fit.platform.id, 0)
    if power.psu_watts is not None and fit.platform.gpu_slots > 0 and power.psu_watts > included:
        psu = psu_cost(power.psu_watts, power.psu_units)
        extra += (psu.usd or 0.0) * rig.nodes
        items.append(psu)
    return extra, complete


def rig_cost(
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
        extra = _owned_host_lines(fit, power, host, items)
    elif fit is not None and whole_machine:
        items.append(CostItem(f"platform {fit.platform.id}", 0.0, "platform", "included in the server's price"))
    elif fit is not None:
        extra, complete = _platform_lines(rig, fit, power, items)
    if gpu_total is None:
        return None, False, tuple(items)
    return gpu_total + extra, complete, tuple(items)
