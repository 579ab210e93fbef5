"""A small TOML writer for the profiles (the standard library reads TOML but does not write it).

The one TOML writer of the package: the fitted speed, serving, training and power-curve
profiles and ``rigplan measure``'s results all go through :func:`dumps`.  Handles what they
hold: strings, booleans, integers, floats, dates, lists of scalars, nested tables and arrays of
tables (whose items may hold tables of their own).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

#: Significant digits kept for fitted floats (more than the data can tell).
FLOAT_DIGITS = 6


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML cannot hold {value}")
        text = f"{value:.{FLOAT_DIGITS}g}"
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Sequence):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else json.dumps(name)


def _write(lines: list[str], table: Mapping[str, Any], prefix: str) -> None:
    for k, v in table.items():
        if not _is_table(v) and not _is_table_array(v):
            lines.append(f"{_key(k)} = {_scalar(v)}")
    for k, v in table.items():
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        if _is_table(v):
            lines.append("")
            lines.append(f"[{name}]")
            _write(lines, v, name)
        elif _is_table_array(v):
            for item in v:
                lines.append("")
                lines.append(f"[[{name}]]")
                _write(lines, item, name)


def dumps(doc: Mapping[str, Any], header: str = "") -> str:
    """TOML text of ``doc`` with an optional comment header."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    _write(lines, doc, "")
    return "\n".join(lines).lstrip("\n") + "\n"
