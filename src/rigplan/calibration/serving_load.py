"""Load the serving profiles shipped as package data (``calibration/serving/*.toml``).

One file per vLLM-class engine: the batch model's parameters (:mod:`rigplan.speed.batch`),
the scheduler defaults, the residual spreads that set ranges and the rows it was fitted on.
``python -m rigplan.calibration.serving_fit`` writes them; unknown keys are refused.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

from ..errors import DataFileError
from ..speed.batch import ServingBehaviour, ServingParameters, ServingProfile
from ..speed.profile import Spread
from .load import without_data_rows

SERVING_PACKAGE = "rigplan.calibration"
SERVING_FOLDER = "serving"
_TOP_KEYS = {
    "name",
    "version",
    "engines",
    "source",
    "notes",
    "rows",
    "calibrated_kinds",
    "parameters",
    "behaviour",
    "spread",
    "data",
}


def _table(path: str, where: str, value: Any, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DataFileError(path, where, "expected a table")
    unknown = set(value) - allowed
    if unknown:
        raise DataFileError(path, f"{where}.{sorted(unknown)[0]}", "unknown key")
    return value


def _spread(path: str, where: str, value: Any) -> Spread:
    t = _table(path, where, value, {"low", "high", "mape", "rows"})
    try:
        low, high = float(t["low"]), float(t["high"])
    except (KeyError, TypeError, ValueError):
        raise DataFileError(path, where, "needs numbers low and high") from None
    if low > 0 or high < 0:
        raise DataFileError(path, where, f"low must be ≤ 0 ≤ high, got {low} … {high}")
    mape = t.get("mape")
    return Spread(low, high, float(mape) if mape is not None else None, int(t.get("rows", 0)))


def parse_serving_profile(path: str, doc: Mapping[str, Any]) -> ServingProfile:
    """A :class:`ServingProfile` from a parsed TOML document.

    Raises:
        DataFileError: a field missing, unknown or of the wrong type.
    """
    _table(path, "", doc, _TOP_KEYS)
    params = _table(path, "parameters", doc.get("parameters", {}), set(ServingParameters.names()))
    behaviour = _table(path, "behaviour", doc.get("behaviour", {}), set(ServingBehaviour.__dataclass_fields__))
    spread = _table(path, "spread", doc.get("spread", {}), {"few_users", "many_users"})
    try:
        return ServingProfile(
            name=str(doc["name"]),
            version=str(doc["version"]),
            engines=tuple(doc["engines"]),
            parameters=ServingParameters(**{k: float(v) for k, v in params.items()}),
            behaviour=ServingBehaviour(**behaviour),
            few_users_spread=_spread(path, "spread.few_users", spread["few_users"]),
            many_users_spread=_spread(path, "spread.many_users", spread["many_users"]),
            rows=int(doc.get("rows", 0)),
            calibrated_kinds=tuple(doc.get("calibrated_kinds", ())),
            source=str(doc.get("source", "")),
            notes=str(doc.get("notes", "")),
        )
    except KeyError as exc:
        raise DataFileError(path, str(exc.args[0]), "missing") from None
    except (TypeError, ValueError) as exc:
        raise DataFileError(path, "", str(exc)) from None


@functools.cache
def load_serving_profiles() -> dict[str, ServingProfile]:
    """Every shipped serving profile by engine id (read once per process)."""
    folder = resources.files(SERVING_PACKAGE).joinpath(SERVING_FOLDER)
    out: dict[str, ServingProfile] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        where = f"{SERVING_FOLDER}/{entry.name}"
        try:
            doc = tomllib.loads(without_data_rows(entry.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise DataFileError(where, "toml", str(exc)) from None
        profile = parse_serving_profile(where, doc)
        for engine in profile.engines:
            out[engine] = profile
    return out


def serving_rows(engine: str) -> list[dict[str, Any]]:
    """The ``[[data]]`` rows a shipped serving profile was fitted on (for reports and tests)."""
    folder = resources.files(SERVING_PACKAGE).joinpath(SERVING_FOLDER)
    for entry in folder.iterdir():
        if entry.name.endswith(".toml"):
            doc = tomllib.loads(entry.read_text(encoding="utf-8"))
            if engine in doc.get("engines", []):
                return list(doc.get("data", []))
    return []
