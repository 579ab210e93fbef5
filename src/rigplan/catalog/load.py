"""Load the TOML catalogues into validated, frozen records.

This module and ``integrations/`` are the only places that read files.  Each row is checked
against its record's fields: unknown keys, missing keys and wrong types are refused with the
file, the row and the field named.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import tomllib
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from ..errors import CatalogError
from .records import (
    COOLING,
    GPU,
    GPU_CLASSES,
    NVLINK_KINDS,
    POWER_CONNECTORS,
    Catalog,
    Correction,
    Model,
    Platform,
    Price,
    PriceGap,
    PsuPrice,
)

R = TypeVar("R")

_CHOICES: dict[tuple[type, str], tuple[str, ...]] = {
    (GPU, "gpu_class"): GPU_CLASSES,
    (GPU, "cooling"): COOLING,
    (GPU, "nvlink"): NVLINK_KINDS,
    (GPU, "power_connector"): POWER_CONNECTORS,
    (Model, "ffn_kind"): ("gated", "plain"),
    (Price, "kind"): ("launch", "street", "used", "yours"),
    (Platform, "platform_class"): ("desktop", "hedt", "server"),
}


def _check(value: Any, hint: Any) -> Any:
    """Return ``value`` converted to ``hint`` or raise TypeError with the expected type."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check(value, arg)
            except TypeError:
                continue
        raise TypeError(f"expected {hint}, got {type(value).__name__} {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {value!r}")
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        return tuple(_check(v, item) for v in value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {value!r}")
        return value
    if hint is dt.date:
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise TypeError(f"expected a date (YYYY-MM-DD), got {value!r}")
        return value
    if not isinstance(value, hint):
        raise TypeError(f"expected {hint.__name__}, got {value!r}")
    return value


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, once per record class (it dominated catalogue loading)."""
    return typing.get_type_hints(cls)


def build_record(cls: type[R], row: Mapping[str, Any], *, path: str, where: str) -> R:
    """Validate one mapping against the dataclass ``cls`` and build the frozen record."""
    hints = _type_hints(typing.cast(type, cls))
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(row) - set(fields))
    if unknown:
        raise CatalogError(path, f"{where}.{unknown[0]}", f"unknown key (allowed: {', '.join(fields)})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in row:
            if required:
                raise CatalogError(path, f"{where}.{name}", "missing")
            continue
        try:
            value = _check(row[name], hints[name])
        except TypeError as exc:
            raise CatalogError(path, f"{where}.{name}", str(exc)) from None
        choices = _CHOICES.get((cls, name))
        if choices and value not in choices:
            raise CatalogError(path, f"{where}.{name}", f"{value!r} is not one of {', '.join(choices)}")
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise CatalogError(path, f"{where}.{name}", f"must not be negative, got {value}")
        kwargs[name] = value
    return cls(**kwargs)


def _read_toml(text: str, path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(path, "toml", str(exc)) from None


def load_table(cls: type[R], text: str, path: str) -> dict[str, R]:
    """Rows keyed by id (``[rtx-4090]`` tables) -> ``{id: record}``."""
    data = _read_toml(text, path)
    out: dict[str, R] = {}
    for key, row in data.items():
        if not isinstance(row, dict):
            raise CatalogError(path, key, "expected a table of fields")
        out[key] = build_record(cls, {"id": key, **row}, path=path, where=key)
    return out


def load_rows(cls: type[R], key: str, text: str, path: str) -> dict[str, tuple[R, ...]]:
    """``[[key]]`` rows with a ``gpu`` field -> ``{gpu_id: (row, ...)}``."""
    data = _read_toml(text, path)
    extra = sorted(set(data) - {key})
    if extra:
        raise CatalogError(path, extra[0], f"unknown top-level key (expected [[{key}]] rows)")
    out: dict[str, list[R]] = {}
    for i, row in enumerate(data.get(key, [])):
        record = build_record(cls, row, path=path, where=f"{key}[{i}]")
        out.setdefault(record.gpu, []).append(record)  # type: ignore[attr-defined]
    return {k: tuple(v) for k, v in out.items()}


def load_psu_prices(text: str, path: str) -> tuple[PsuPrice, ...]:
    """``[[psu]]`` rows, smallest first; at least one, each size once."""
    data = _read_toml(text, path)
    extra = sorted(set(data) - {"psu"})
    if extra:
        raise CatalogError(path, extra[0], "unknown top-level key (expected [[psu]] rows)")
    rows = [build_record(PsuPrice, row, path=path, where=f"psu[{i}]") for i, row in enumerate(data.get("psu", []))]
    if not rows:
        raise CatalogError(path, "psu", "no PSU price rows")
    if len({r.watts for r in rows}) != len(rows):
        raise CatalogError(path, "psu", "two rows for the same PSU size")
    return tuple(sorted(rows, key=lambda r: r.watts))


def _data_text(name: str) -> str:
    return resources.files("rigplan.catalog").joinpath("data", name).read_text(encoding="utf-8")


@functools.cache
def load_catalog() -> Catalog:
    """The built-in catalogue shipped as package data (cached; records are frozen)."""
    gpus = load_table(GPU, _data_text("gpus.toml"), "gpus.toml")
    models = load_table(Model, _data_text("models.toml"), "models.toml")
    prices = load_rows(Price, "price", _data_text("prices.toml"), "prices.toml")
    corrections = load_rows(Correction, "correction", _data_text("corrections.toml"), "corrections.toml")
    platforms = load_table(Platform, _data_text("platforms.toml"), "platforms.toml")
    gaps = load_rows(PriceGap, "unpriced", _data_text("unpriced.toml"), "unpriced.toml")
    psus = load_psu_prices(_data_text("psus.toml"), "psus.toml")
    for name, rows in (("prices.toml", prices), ("corrections.toml", corrections), ("unpriced.toml", gaps)):
        for gpu_id in rows:
            if gpu_id not in gpus:
                raise CatalogError(name, gpu_id, "a row for a GPU that is not in gpus.toml")
    return Catalog(
        gpus=gpus,
        models=models,
        prices=prices,
        platforms=platforms,
        corrections=corrections,
        price_gaps=gaps,
        psu_prices=psus,
    )


def load_catalog_file(cls: type[R], path: Path) -> dict[str, R]:
    """Load a user's own catalogue file of ``cls`` rows (e.g. extra GPUs)."""
    from ..textfiles import read_text

    text = read_text(path)
    return load_table(cls, text, str(path))
