"""The engine × hardware support table (``data/engine_support.toml``) as frozen records.

Each rule says what an engine cannot do (``refuse``) or does only slowly / with a caveat
(``warn``) on some hardware, with its reason and source.  :func:`rigplan.support.check_support`
applies them; this module only loads and validates the file.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from dataclasses import dataclass
from importlib import resources

from ..errors import CatalogError
from .load import build_record

SUPPORT_FILE = "engine_support.toml"
VERDICTS = ("refuse", "warn")


@dataclass(frozen=True, slots=True)
class SupportRule:
    """One row of the support table; every condition given must hold for it to apply."""

    id: str
    verdict: str
    engines: tuple[str, ...]
    reason: str
    source: str
    as_of: dt.date
    architectures: tuple[str, ...] = ()
    vendors: tuple[str, ...] = ()
    quants: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    not_backends: tuple[str, ...] = ()
    mixed_vendors: bool | None = None
    moe: bool | None = None  # true: mixture-of-experts models only; false: dense only


@functools.cache
def load_support_rules() -> tuple[SupportRule, ...]:
    """The shipped support table, validated (unknown keys and verdicts are refused)."""
    path = f"rigplan/catalog/data/{SUPPORT_FILE}"
    text = resources.files("rigplan.catalog").joinpath("data", SUPPORT_FILE).read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(path, "toml", str(exc)) from None
    rules = []
    for i, row in enumerate(doc.get("rules", [])):
        rule = build_record(SupportRule, row, path=path, where=f"rules[{i}]")
        if rule.verdict not in VERDICTS:
            raise CatalogError(path, f"rules[{i}].verdict", f"{rule.verdict!r} is not one of {', '.join(VERDICTS)}")
        rules.append(rule)
    return tuple(rules)
