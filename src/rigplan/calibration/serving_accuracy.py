"""Accuracy of the serving model: leave-one-source-out and leave-one-GPU-out on the serving rows.

Reads the held-out predictions stored in ``calibration/serving/*.toml`` (written by
``serving_fit``): each row predicted by a fit without its source, and by a fit without its GPU.
A row's range is the held-out prediction times the profile's band at the row's concurrency, so "range holds" says how
often a measurement from an unseen source or GPU falls inside.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from .serving_load import load_serving_profiles, serving_rows

SCOPES = (("held_out_source", "leave-one-source-out"), ("held_out_gpu", "leave-one-GPU-out"))
#: Issue 13's targets for maximum offline output throughput on unseen GPUs.
TARGET_MAPE = 0.25
TARGET_COVERAGE = 0.80


@dataclass(frozen=True, slots=True)
class ServingGroup:
    engine: str
    test: str  # "decode" | "throughput" | "max throughput"
    scope: str
    rows: int
    gpus: tuple[str, ...]
    mape: float
    coverage: float

    @property
    def meets(self) -> bool | None:
        if self.test != "max throughput" or self.scope != "leave-one-GPU-out":
            return None
        return self.mape <= TARGET_MAPE and self.coverage >= TARGET_COVERAGE

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "test": self.test,
            "scope": self.scope,
            "rows": self.rows,
            "gpus": list(self.gpus),
            "mape": round(self.mape, 4),
            "range_holds": round(self.coverage, 4),
            "meets_target": self.meets,
        }


def _test(row: dict[str, Any]) -> str:
    if row["metric"] == "throughput":
        return "max throughput" if row["concurrency"] == "max" else "throughput"
    return "decode"


def _concurrency(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def serving_accuracy() -> list[ServingGroup]:
    """One group per engine, test and scope, from the shipped serving profiles."""
    groups: list[ServingGroup] = []
    for engine, profile in sorted(load_serving_profiles().items()):
        keyed: dict[tuple[str, str], list[tuple[float, float, str, bool]]] = defaultdict(list)
        for row in serving_rows(engine):
            lo, hi = profile.spread_at(_concurrency(row["concurrency"])).factors()
            for field, scope in SCOPES:
                if field in row:
                    m, p = float(row["measured"]), float(row[field])
                    keyed[(_test(row), scope)].append((m, p, row["rig"], p * lo <= m <= p * hi))
        for (test, scope), values in sorted(keyed.items()):
            mape = sum(abs(p / m - 1) for m, p, _, _ in values) / len(values)
            inside = sum(1 for *_, held in values if held) / len(values)
            gpus = tuple(sorted({rig.split("x ")[-1] for _, _, rig, _ in values}))
            groups.append(ServingGroup(engine, test, scope, len(values), gpus, mape, inside))
    return groups


def format_serving_accuracy(groups: list[ServingGroup]) -> str:
    """Plain-text table for ``rigplan accuracy``."""
    lines = ["serving (vLLM-class batch model), held out by source and by GPU:"]
    lines.append(f"  {'engine':<14}{'test':<16}{'scope':<22}{'rows':>5}{'MAPE':>8}{'range holds':>13}  target")
    for g in groups:
        target = "" if g.meets is None else ("met" if g.meets else "NOT MET")
        lines.append(f"  {g.engine:<14}{g.test:<16}{g.scope:<22}{g.rows:>5}{g.mape:>8.1%}{g.coverage:>13.0%}  {target}")
    return "\n".join(lines)


def markdown_serving_accuracy(groups: list[ServingGroup]) -> str:
    """The table docs/accuracy.md holds."""
    out = ["| engine | test | scope | rows | GPUs | MAPE | range holds | target |", "|---|---|---|--:|---|--:|--:|---|"]
    for g in groups:
        target = "" if g.meets is None else ("met" if g.meets else "not met")
        out.append(
            f"| {g.engine} | {g.test} | {g.scope} | {g.rows} | {', '.join(g.gpus)} | {g.mape:.1%} | "
            f"{g.coverage:.0%} | {target} |"
        )
    return "\n".join(out)
