"""Held-out accuracy of the llama.cpp profiles by era, backend, dense / MoE and GPU family.

Read from the rows stored in the shipped profiles (``fit.py`` writes every row with its
leave-one-GPU-out and leave-one-source-out predictions).  A row's range is built from the
held-out residuals of the *other* folds of its profile (other GPUs, or other sources), widened
as ``estimate()`` widens it when the row's hardware kind or vendor is not among them, so
"range holds" is measured on data the range never saw.

Targets (issue 12): current builds (leave-one-source-out and leave-one-GPU-out) decode MAPE ≤
12 %, prefill ≤ 20 %, range holds ≥ 80 %; May-2024 builds (leave-one-GPU-out) decode ≤ 8 %,
prefill ≤ 15 %.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..speed import hardware
from ..speed.ranges import MIN_LOG_HALF_WIDTH
from ..speed.select import NEW_VENDOR_WIDENING
from . import dataset, spreads
from .load import load_profiles, profile_rows

#: (era, method) → (decode MAPE, prefill MAPE, range coverage) targets.
TARGETS: dict[tuple[str, str], tuple[float, float, float]] = {
    (dataset.ERA_CURRENT, "leave-one-source-out"): (0.12, 0.20, 0.80),
    (dataset.ERA_CURRENT, "leave-one-GPU-out"): (0.12, 0.20, 0.80),
    (dataset.ERA_2024, "leave-one-GPU-out"): (0.08, 0.15, 0.80),
}
METHODS = {"leave-one-GPU-out": "held_out", "leave-one-source-out": "held_out_source"}
LLAMA_PROFILES = ("llama.cpp-",)
WORST = 10


@dataclass(frozen=True, slots=True)
class HeldOutRow(spreads.HeldOutFigure):
    ref: str
    profile: str
    era: str
    method: str
    backend: str
    gpu: str
    family: str  # memory class / architecture ("gddr/ada", "unified/blackwell")
    vendor: str
    moe: bool
    model: str
    quant: str
    kind: str
    test: str
    source_id: str
    measured: float
    predicted: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the breakdown: a set of rows and its figures."""

    era: str
    method: str
    by: str  # "all", "backend", "model", "GPU family"
    value: str
    kind: str
    rows: int
    mape: float
    coverage: float
    target: tuple[float, float] | None  # (MAPE, coverage) when this line is targeted

    @property
    def meets(self) -> bool | None:
        if self.target is None:
            return None
        return self.mape <= self.target[0] and self.coverage >= self.target[1]


def _gpu_facts() -> Mapping[str, tuple[str, str]]:
    cat = dataset.calibration_catalog()
    return {g.id: (hardware.hardware_kind(g), g.vendor) for g in cat.gpus.values()}


def _test(row: Mapping[str, Any]) -> str:
    if row["kind"] == "decode":
        return f"tg{row['output_tokens']}" + (f"@d{row['prompt_tokens']}" if row["prompt_tokens"] else "")
    depth = row.get("depth", 0)
    return f"pp{row['prompt_tokens']}" + (f"@d{depth}" if depth else "")


def held_out_rows(profiles: Iterable[str] | None = None) -> list[HeldOutRow]:
    """Every llama.cpp row with a held-out prediction, once per method, with its range."""
    names = [n for n in (profiles or load_profiles()) if n.startswith(LLAMA_PROFILES)]
    facts = _gpu_facts()
    out: list[HeldOutRow] = []
    for name in names:
        rows = [r for r in profile_rows(name) if r.get("measured")]
        for method, key in METHODS.items():
            fold: Callable[[Mapping[str, Any]], str] = (
                (lambda r: str(r["gpu"])) if key == "held_out" else (lambda r: str(r.get("source_id", "")))
            )
            usable = [r for r in rows if key in r]
            out.extend(_with_ranges(name, method, key, usable, fold, facts))
    return out


def _with_ranges(
    profile: str,
    method: str,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    fold: Callable[[Mapping[str, Any]], str],
    facts: Mapping[str, tuple[str, str]],
) -> list[HeldOutRow]:
    split = {kind: spreads.moe_split(rows, kind) for kind in ("decode", "prefill")}

    def group(r: Mapping[str, Any]) -> tuple[str, bool]:
        return r["kind"], bool(r.get("moe")) if split.get(r["kind"]) else False

    logs: dict[tuple[str, bool], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        logs[group(r)][fold(r)].append(math.log(r["measured"] / r[key]))
    out = []
    for r in rows:
        family, vendor = facts.get(r["gpu"], ("unknown/unknown", "unknown"))
        lo, hi = spreads.left_out_band(logs[group(r)], fold(r)) or (-MIN_LOG_HALF_WIDTH, MIN_LOG_HALF_WIDTH)
        other_rows = [o for o in rows if fold(o) != fold(r)]
        seen = {facts.get(o["gpu"], ("", ""))[0] for o in other_rows}
        vendors = {facts.get(o["gpu"], ("", ""))[1] for o in other_rows}
        widen = 1.0 if family in seen else (1.5 if vendor in vendors else NEW_VENDOR_WIDENING)
        pred = float(r[key])
        out.append(_held_out_row(profile, method, r, family, vendor, pred, (lo * widen, hi * widen)))
    return out


def _held_out_row(
    profile: str,
    method: str,
    r: Mapping[str, Any],
    family: str,
    vendor: str,
    pred: float,
    log_band: tuple[float, float],
) -> HeldOutRow:
    return HeldOutRow(
        ref=r["ref"],
        profile=profile,
        era=r.get("era", dataset.ERA_2024),
        method=method,
        backend=r.get("backend", "cuda"),
        gpu=r["gpu"],
        family=family,
        vendor=vendor,
        moe=bool(r.get("moe", False)),
        model=r["model"],
        quant=r["quant"],
        kind=r["kind"],
        test=_test(r),
        source_id=r.get("source_id", ""),
        measured=float(r["measured"]),
        predicted=pred,
        low=pred * math.exp(log_band[0]),
        high=pred * math.exp(log_band[1]),
    )


def _line(era: str, method: str, by: str, value: str, kind: str, rows: Sequence[HeldOutRow]) -> Line:
    target = None
    if by == "all" and (era, method) in TARGETS:
        dec, pre, cov = TARGETS[(era, method)]
        target = (dec if kind == "decode" else pre, cov)
    return Line(
        era,
        method,
        by,
        value,
        kind,
        len(rows),
        float(np.mean([abs(r.error) for r in rows])),
        float(np.mean([r.covered for r in rows])),
        target,
    )


def breakdown(rows: Sequence[HeldOutRow]) -> list[Line]:
    """Lines by era × method × (all, backend, dense/MoE, GPU family) × decode/prefill."""
    groups: dict[tuple[str, str, str, str, str], list[HeldOutRow]] = defaultdict(list)
    for r in rows:
        for by, value in (
            ("all", "all"),
            ("backend", r.backend),
            ("model", "MoE" if r.moe else "dense"),
            ("GPU family", r.family),
        ):
            groups[(r.era, r.method, by, value, r.kind)].append(r)
    order = {"all": 0, "backend": 1, "model": 2, "GPU family": 3}
    keys = sorted(groups, key=lambda k: (k[0] != dataset.ERA_CURRENT, k[1], order[k[2]], k[3], k[4]))
    return [_line(*k, groups[k]) for k in keys]


def worst_rows(rows: Sequence[HeldOutRow], n: int = WORST) -> list[HeldOutRow]:
    current = [r for r in rows if r.era == dataset.ERA_CURRENT and r.method == "leave-one-source-out"]
    return sorted(current or rows, key=lambda r: -abs(r.error))[:n]


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def markdown_breakdown(rows: Sequence[HeldOutRow]) -> str:
    """The breakdown as markdown (README and docs/accuracy.md hold it)."""
    lines = [
        "| builds | held out | by | group | test | rows | MAPE | range holds | target |",
        "|---|---|---|---|---|--:|--:|--:|---|",
    ]
    for ln in breakdown(rows):
        target = ""
        if ln.target:
            target = f"MAPE ≤ {_pct(ln.target[0])}, range ≥ {_pct(ln.target[1])}: "
            target += "**met**" if ln.meets else "**not met**"
        era = "2025–26" if ln.era == dataset.ERA_CURRENT else "May 2024"
        lines.append(
            f"| {era} | {ln.method} | {ln.by} | {ln.value} | {ln.kind} | {ln.rows} | {_pct(ln.mape)} "
            f"| {_pct(ln.coverage)} | {target} |"
        )
    lines += [
        "",
        f"Worst {WORST} current-build rows (leave-one-source-out):",
        "",
        "| row | profile | GPU | model | quant | test | measured | predicted | error | range |",
        "|---|---|---|---|---|---|--:|--:|--:|---|",
    ]
    for r in worst_rows(rows):
        lines.append(
            f"| {r.ref} | {r.profile} | {r.gpu} | {r.model} | {r.quant} | {r.test} | {r.measured:.4g} "
            f"| {r.predicted:.4g} | {r.error:+.0%} | {r.low:.4g}–{r.high:.4g} |"
        )
    return "\n".join(lines) + "\n"


def text_breakdown(rows: Sequence[HeldOutRow]) -> str:
    """Plain text for ``rigplan accuracy``."""
    out = ["llama.cpp by build era, held-out method, backend, dense/MoE and GPU family:", ""]
    out.append(
        f"{'builds':8} {'held out':21} {'by':10} {'group':20} {'test':8} {'rows':>5} {'MAPE':>7} {'range':>7}  target"
    )
    for ln in breakdown(rows):
        target = ""
        if ln.target:
            target = f"MAPE ≤ {_pct(ln.target[0])}, cov ≥ {_pct(ln.target[1])}: " + ("met" if ln.meets else "NOT MET")
        era = "2025-26" if ln.era == dataset.ERA_CURRENT else "2024"
        out.append(
            f"{era:8} {ln.method:21} {ln.by:10} {ln.value:20} {ln.kind:8} {ln.rows:5d} {_pct(ln.mape):>7}"
            f" {_pct(ln.coverage):>7}  {target}"
        )
    out += ["", f"worst {WORST} current-build rows (leave-one-source-out):"]
    for r in worst_rows(rows):
        out.append(
            f"  {r.ref:28} {r.gpu:24} {r.model:20} {r.quant:9} {r.test:14} measured {r.measured:8.2f}"
            f" predicted {r.predicted:8.2f} ({r.error:+.1%}) range {r.low:.4g}–{r.high:.4g}"
        )
    return "\n".join(out)


def breakdown_dict(rows: Sequence[HeldOutRow]) -> dict[str, Any]:
    """The breakdown for ``rigplan accuracy --json``."""
    return {
        "method": "held-out predictions stored in the profiles; ranges from the other folds' residuals",
        "lines": [
            {
                "era": ln.era,
                "held_out": ln.method,
                "by": ln.by,
                "group": ln.value,
                "test": ln.kind,
                "rows": ln.rows,
                "mape": round(ln.mape, 4),
                "range_coverage": round(ln.coverage, 4),
                "target": list(ln.target) if ln.target else None,
                "meets_target": ln.meets,
            }
            for ln in breakdown(rows)
        ],
        "worst_rows": [
            {
                "ref": r.ref,
                "gpu": r.gpu,
                "model": r.model,
                "quant": r.quant,
                "test": r.test,
                "measured": r.measured,
                "predicted": round(r.predicted, 2),
                "range": [round(r.low, 2), round(r.high, 2)],
                "error": round(r.error, 4),
            }
            for r in worst_rows(rows)
        ],
    }
