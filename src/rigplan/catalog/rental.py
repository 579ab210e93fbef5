"""Renting GPUs and buying whole SXM systems: ``data/rental.toml`` as validated, frozen records."""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..errors import DataFileError

RENTAL_TIERS = ("on-demand", "spot")


@dataclass(frozen=True, slots=True)
class RentalPrice:
    """$/GPU-hour to rent one GPU from one provider in one tier, dated and sourced."""

    gpu: str
    provider: str
    tier: str  # on-demand | spot
    usd_per_gpu_hour: float
    source: str
    as_of: dt.date
    notes: str = ""


@dataclass(frozen=True, slots=True)
class SystemPrice:
    """The price of a whole system of ``gpus`` × ``gpu`` (baseboard server included)."""

    system: str
    gpu: str
    gpus: int
    usd: float
    source: str
    as_of: dt.date
    notes: str = ""


def _rows(cls: type[Any], rows: list[dict[str, Any]], where: str) -> list[Any]:
    fields = set(cls.__dataclass_fields__)
    out = []
    for i, row in enumerate(rows):
        unknown = set(row) - fields
        if unknown:
            raise DataFileError("rental.toml", where, f"row {i}: unknown keys {sorted(unknown)}")
        try:
            rec = cls(**row)
        except TypeError as exc:
            raise DataFileError("rental.toml", where, f"row {i}: {exc}") from None
        out.append(rec)
    return out


@functools.cache
def load_rental() -> tuple[tuple[RentalPrice, ...], tuple[SystemPrice, ...]]:
    """(rental prices, whole-system prices) from the package data.

    Raises:
        DataFileError: a row with unknown keys, a missing field, a bad tier or a price ≤ 0.
    """
    text = resources.files("rigplan.catalog").joinpath("data", "rental.toml").read_text("utf-8")
    data = tomllib.loads(text)
    rentals = _rows(RentalPrice, data.get("rental", []), "rental")
    systems = _rows(SystemPrice, data.get("system", []), "system")
    for r in rentals:
        if r.tier not in RENTAL_TIERS or not r.usd_per_gpu_hour > 0:
            raise DataFileError("rental.toml", "rental", f"{r.gpu}: tier must be {RENTAL_TIERS}, price > 0")
    return tuple(rentals), tuple(systems)


def rental_prices(gpu_id: str, tier: str) -> tuple[RentalPrice, ...]:
    """The catalogue's rental rows for one GPU and tier, cheapest first."""
    rows = [r for r in load_rental()[0] if r.gpu == gpu_id and r.tier == tier]
    return tuple(sorted(rows, key=lambda r: r.usd_per_gpu_hour))


def system_price(gpu_id: str, gpus: int) -> SystemPrice | None:
    """A whole-system price for a node of ``gpus`` × ``gpu_id``, if one is sourced."""
    for s in load_rental()[1]:
        if s.gpu == gpu_id and s.gpus == gpus:
            return s
    return None
