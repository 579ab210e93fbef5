"""Load the engine profiles shipped as package data (``calibration/profiles/*.toml``).

Each file is one :class:`~rigplan.speed.profile.EngineProfile`: parameters, engine behaviour,
the residual spread that sets ranges, and the rows it was fitted on.  Unknown keys and wrong
types are refused with the file and the field named.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tomllib
from collections.abc import Iterable, Mapping, Set
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import DataFileError
from ..speed.profile import WEIGHT_CLASSES, EngineBehaviour, EngineProfile, SpeedParameters, Spread

PROFILE_PACKAGE = "rigplan.calibration"
PROFILE_FOLDER = "profiles"
_TOP_KEYS = {
    "name",
    "version",
    "engines",
    "backend",
    "source",
    "notes",
    "rows",
    "calibrated_kinds",
    "uncalibrated_widening",
    "behaviour",
    "parameters",
    "spread",
    "fit",
    "data",
    "first_build",
    "fitted_builds",
    "calibrated_gpus",
    "calibrated_model_kinds",
}


def _number(path: str, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataFileError(path, where, f"expected a number, got {value!r}")
    return float(value)


def _spread(path: str, where: str, table: Any) -> Spread:
    if not isinstance(table, Mapping):
        raise DataFileError(path, where, "expected a table with low, high (and mape, rows)")
    unknown = set(table) - {"low", "high", "mape", "rows"}
    if unknown:
        raise DataFileError(path, f"{where}.{sorted(unknown)[0]}", "unknown key")
    for key in ("low", "high"):
        if key not in table:
            raise DataFileError(path, f"{where}.{key}", "missing")
    low, high = _number(path, f"{where}.low", table["low"]), _number(path, f"{where}.high", table["high"])
    if low > 0 or high < 0:
        raise DataFileError(path, where, f"low must be ≤ 0 ≤ high, got {low} … {high}")
    mape = table.get("mape")
    rows = table.get("rows", 0)
    if not isinstance(rows, int) or isinstance(rows, bool):
        raise DataFileError(path, f"{where}.rows", f"expected an integer, got {rows!r}")
    return Spread(low, high, None if mape is None else _number(path, f"{where}.mape", mape), rows)


def parse_parameters(path: str, table: Any) -> SpeedParameters:
    if not isinstance(table, Mapping):
        raise DataFileError(path, "parameters", "expected a table")
    names = {f.name for f in dataclasses.fields(SpeedParameters)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in names:
            raise DataFileError(path, f"parameters.{key}", f"unknown parameter (known: {', '.join(sorted(names))})")
        if key == "sm_cycles_per_weight":
            if not isinstance(value, Mapping):
                raise DataFileError(path, "parameters.sm_cycles_per_weight", "expected a table")
            cycles = {}
            for cls, c in value.items():
                if cls not in WEIGHT_CLASSES:
                    raise DataFileError(
                        path,
                        f"parameters.sm_cycles_per_weight.{cls}",
                        f"unknown weight class (known: {', '.join(WEIGHT_CLASSES)})",
                    )
                cycles[cls] = _number(path, f"parameters.sm_cycles_per_weight.{cls}", c)
            values[key] = cycles
        else:
            number = _number(path, f"parameters.{key}", value)
            if number < 0:
                raise DataFileError(path, f"parameters.{key}", f"must be ≥ 0, got {number}")
            values[key] = number
    return SpeedParameters(**values)


def parse_behaviour(path: str, table: Any) -> EngineBehaviour:
    if not isinstance(table, Mapping):
        raise DataFileError(path, "behaviour", "expected a table")
    fields = {f.name: f for f in dataclasses.fields(EngineBehaviour)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise DataFileError(path, f"behaviour.{key}", "unknown key")
        want = fields[key].type
        if want in ("bool", bool) and not isinstance(value, bool):
            raise DataFileError(path, f"behaviour.{key}", f"expected true or false, got {value!r}")
        if want in ("int", int) and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise DataFileError(path, f"behaviour.{key}", f"expected a whole number ≥ 1, got {value!r}")
        values[key] = value
    return EngineBehaviour(**values)


def check_head(path: str, doc: Mapping[str, Any], allowed: Set[str], required: Iterable[str]) -> list[str]:
    """Check a profile document's keys (no unknown one, every required one) and return its
    non-empty ``engines`` list; the first fault raises DataFileError naming ``path`` and the key."""
    unknown = set(doc) - allowed
    if unknown:
        raise DataFileError(path, sorted(unknown)[0], "unknown key")
    for key in required:
        if key not in doc:
            raise DataFileError(path, key, "missing")
    engines = doc["engines"]
    if not isinstance(engines, list) or not engines or not all(isinstance(e, str) for e in engines):
        raise DataFileError(path, "engines", "expected a list of engine ids")
    return engines


def parse_profile(path: str, doc: Mapping[str, Any]) -> EngineProfile:
    """An :class:`EngineProfile` from a parsed TOML document; ``path`` names it in errors."""
    engines = check_head(path, doc, _TOP_KEYS, ("name", "version", "engines", "backend", "parameters", "spread"))
    spread = doc["spread"]
    if not isinstance(spread, Mapping) or "decode" not in spread or "prefill" not in spread:
        raise DataFileError(path, "spread", "expected [spread.decode] and [spread.prefill]")
    for key in ("name", "version", "backend"):
        if not isinstance(doc[key], str):
            raise DataFileError(path, key, f"expected a string, got {doc[key]!r}")
    rows = doc.get("rows", 0)
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise DataFileError(path, "rows", f"expected a whole number ≥ 0, got {rows!r}")
    kinds = _strings(path, doc, "calibrated_kinds")
    first_build = doc.get("first_build", 0)
    if not isinstance(first_build, int) or isinstance(first_build, bool) or first_build < 0:
        raise DataFileError(path, "first_build", f"expected a whole number ≥ 0, got {first_build!r}")
    fitted = doc.get("fitted_builds")
    if fitted is not None and (
        not isinstance(fitted, list) or len(fitted) != 2 or not all(isinstance(b, int) for b in fitted)
    ):
        raise DataFileError(path, "fitted_builds", f"expected [first, last] build numbers, got {fitted!r}")
    return EngineProfile(
        name=doc["name"],
        version=doc["version"],
        engines=tuple(engines),
        backend=doc["backend"],
        parameters=parse_parameters(path, doc["parameters"]),
        behaviour=parse_behaviour(path, doc.get("behaviour", {})),
        decode_spread=_spread(path, "spread.decode", spread["decode"]),
        prefill_spread=_spread(path, "spread.prefill", spread["prefill"]),
        rows=rows,
        calibrated_kinds=tuple(kinds),
        uncalibrated_widening=_number(path, "uncalibrated_widening", doc.get("uncalibrated_widening", 1.5)),
        source=str(doc.get("source", "")),
        notes=str(doc.get("notes", "")),
        first_build=first_build,
        fitted_builds=(fitted[0], fitted[1]) if fitted else None,
        calibrated_gpus=_strings(path, doc, "calibrated_gpus"),
        calibrated_model_kinds=_strings(path, doc, "calibrated_model_kinds"),
        moe_decode_spread=_spread(path, "spread.decode_moe", spread["decode_moe"]) if "decode_moe" in spread else None,
        moe_prefill_spread=(
            _spread(path, "spread.prefill_moe", spread["prefill_moe"]) if "prefill_moe" in spread else None
        ),
    )


def _strings(path: str, doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise DataFileError(path, key, "expected a list of strings")
    return tuple(value)


def read_profile(path: Path | str) -> EngineProfile:
    """Read one profile file.

    Raises:
        DataFileError: not TOML, or a field missing, unknown or of the wrong type.
    """
    from ..textfiles import read_toml

    p = Path(path)
    doc = read_toml(p)
    return parse_profile(str(p), doc)


def without_data_rows(text: str) -> str:
    """The profile without its trailing ``[[data]]`` rows (the fit's inputs, read by
    :func:`profile_rows`; an estimate needs only the parameters): most of the parsing time of
    every command.  The whole text when anything but data rows follows the first row."""
    head, sep, tail = text.partition("\n[[data]]")
    if sep and not re.search(r"^\[(?!\[data\]\])", tail, re.MULTILINE):
        return head + "\n"
    return text


@functools.cache
def load_profiles() -> dict[str, EngineProfile]:
    """Every shipped engine profile by name (read once per process)."""
    folder = resources.files(PROFILE_PACKAGE).joinpath(PROFILE_FOLDER)
    out: dict[str, EngineProfile] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        try:
            doc = tomllib.loads(without_data_rows(entry.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise DataFileError(f"{PROFILE_FOLDER}/{entry.name}", "toml", str(exc)) from None
        profile = parse_profile(f"{PROFILE_FOLDER}/{entry.name}", doc)
        out[profile.name] = profile
    return out


def profile_rows(name: str) -> list[dict[str, Any]]:
    """The ``[[data]]`` rows a shipped profile was fitted on (for reports and tests)."""
    folder = resources.files(PROFILE_PACKAGE).joinpath(PROFILE_FOLDER)
    for entry in folder.iterdir():
        if entry.name.endswith(".toml"):
            doc = tomllib.loads(entry.read_text(encoding="utf-8"))
            if doc.get("name") == name:
                return list(doc.get("data", []))
    return []
