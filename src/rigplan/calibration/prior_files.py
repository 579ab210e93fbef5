"""Prior files: the starting values of a fit, kept as data (issue 11), one TOML file each.

The one reader of prior files, for the speed priors (``prior_profiles/``, read by
``priors.py``) and any other prior kept the same way.  A file may build on another:

- ``based_on = "<name>"``: start from that prior's (resolved) document; top-level keys of this
  file replace its keys, and its tables (``[behaviour]``, ``[parameters]``, …) are merged key
  by key (a value that is itself a table, e.g. ``[parameters.sm_cycles_per_weight]``, is
  replaced whole);
- ``parameters_from = "<name>"``: take that prior's ``[parameters]`` table instead of the base's.

Each file's comments carry the sources of its numbers.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from ..errors import DataFileError

PACKAGE = "rigplan.calibration"
#: Keys that say where a file's values come from; removed from the resolved document.
INHERIT_KEYS = ("based_on", "parameters_from")


def read_prior_docs(
    folder: str, package: str = PACKAGE, *, root: Traversable | None = None
) -> dict[str, dict[str, Any]]:
    """Every ``*.toml`` in the package data ``folder`` (or in ``root``, a folder given by the
    caller) by its ``name``, with ``based_on`` / ``parameters_from`` resolved.  Errors name the
    file and the key."""
    raw: dict[str, tuple[str, dict[str, Any]]] = {}
    base = root if root is not None else resources.files(package).joinpath(folder)
    for entry in sorted(base.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        path = f"{folder}/{entry.name}"
        try:
            doc = tomllib.loads(entry.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise DataFileError(path, "toml", str(exc)) from None
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            raise DataFileError(path, "name", "missing or not a string")
        if name in raw:
            raise DataFileError(path, "name", f"{name!r} is also the name of {raw[name][0]}")
        raw[name] = (path, doc)
    resolved: dict[str, dict[str, Any]] = {}
    for name in raw:
        _resolve(name, raw, resolved, ())
    return resolved


def _resolve(
    name: str,
    raw: Mapping[str, tuple[str, dict[str, Any]]],
    done: dict[str, dict[str, Any]],
    chain: tuple[str, ...],
) -> dict[str, Any]:
    if name in done:
        return done[name]
    path, doc = raw[name]
    for key in INHERIT_KEYS:
        other = doc.get(key)
        if other is not None and (not isinstance(other, str) or other not in raw):
            raise DataFileError(path, key, f"no prior file named {other!r} (known: {', '.join(sorted(raw))})")
        if other in chain or other == name:
            raise DataFileError(path, key, f"{other!r} builds on {name!r} in turn")
    out: dict[str, Any] = {}
    if "based_on" in doc:
        out = copy.deepcopy(_resolve(doc["based_on"], raw, done, (*chain, name)))
    if "parameters_from" in doc:
        source = _resolve(doc["parameters_from"], raw, done, (*chain, name))
        out["parameters"] = copy.deepcopy(source.get("parameters", {}))
    for key, value in doc.items():
        if key in INHERIT_KEYS:
            continue
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **copy.deepcopy(dict(value))}
        else:
            out[key] = copy.deepcopy(value)
    done[name] = out
    return out


__all__ = ["INHERIT_KEYS", "read_prior_docs"]
