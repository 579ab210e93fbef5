"""Leave-one-GPU-out accuracy of the speed model, against a naive bandwidth roofline.

For every calibration row the prediction is the one made with the row's GPU left out of the
fit (stored in the profile by ``fit.py``, or recomputed with ``refit=True``).  The range of a
held-out row is built the way the fit builds a profile's spread (``calibration.spreads``), from
the *other* GPUs' residuals only (their band, widened to their own leave-one-GPU-out coverage,
and widened again when the held-out GPU's kind is not among them), so coverage is measured on
data the range never saw.  Rows marked LEGACY are excluded.

Targets (issue 3), llama.cpp on CUDA, GPUs that share their kind with another GPU in the data:
decode MAPE ≤ 10 %, prefill MAPE ≤ 20 %, range coverage ≥ 80 %; fits/out-of-memory verdicts
right on ≥ 99.5 % of runs.  Hardware alone of its kind (the only HBM part, the only Apple chip,
the only Pascal card) and engines without rows of their own are reported, not targeted.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..catalog.records import GPU
from ..speed import hardware
from ..speed.profile import EngineProfile
from ..speed.ranges import MIN_LOG_HALF_WIDTH
from ..speed.work import forward_work
from . import dataset, spreads
from .fit import Prepared, prepare_all
from .load import load_profiles, profile_rows, read_profile

DECODE_MAPE_TARGET = 0.08  # issue 12: May-2024 builds, leave-one-GPU-out
PREFILL_MAPE_TARGET = 0.15
COVERAGE_TARGET = 0.80
FITS_AGREEMENT_TARGET = 0.995
WORST_ROWS = 10
TARGETED_PROFILE = "llama.cpp-cuda-2024"


@dataclass(frozen=True, slots=True)
class RowResult(spreads.HeldOutFigure):
    ref: str
    profile: str
    gpu: str
    gpu_count: int
    model: str
    quant: str
    kind: str
    tokens: int
    measured: float
    predicted: float  # held out
    low: float
    high: float
    roofline: float
    targeted: bool

    @property
    def roofline_error(self) -> float:
        return (self.roofline - self.measured) / self.measured


@dataclass(frozen=True, slots=True)
class Group:
    profile: str
    kind: str
    scope: str  # "targeted" | "reported: <why>"
    rows: int
    gpus: tuple[str, ...]
    mape: float
    coverage: float
    bias: float  # mean log(predicted / measured)
    roofline_mape: float
    target_mape: float | None
    target_coverage: float | None

    @property
    def meets(self) -> bool | None:
        if self.target_mape is None or self.target_coverage is None:
            return None
        return self.mape <= self.target_mape and self.coverage >= self.target_coverage


@dataclass
class AccuracyReport:
    groups: list[Group]
    rows: list[RowResult]
    fits_agreement: float
    fits_runs: int
    fits_disagreements: list[str]
    legacy_excluded: int
    profiles: dict[str, str] = field(default_factory=dict)

    def worst(self, n: int = WORST_ROWS, *, targeted_only: bool = False) -> list[RowResult]:
        rows = [r for r in self.rows if r.targeted or not targeted_only]
        return sorted(rows, key=lambda r: -abs(r.error))[:n]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "leave-one-GPU-out cross-validation, folds by catalogue GPU id, LEGACY rows excluded",
            "profiles": self.profiles,
            "groups": [
                {
                    "profile": g.profile,
                    "kind": g.kind,
                    "scope": g.scope,
                    "rows": g.rows,
                    "gpus": list(g.gpus),
                    "mape": round(g.mape, 4),
                    "range_coverage": round(g.coverage, 4),
                    "bias_log": round(g.bias, 4),
                    "roofline_mape": round(g.roofline_mape, 4),
                    "target_mape": g.target_mape,
                    "target_coverage": g.target_coverage,
                    "meets_target": g.meets,
                }
                for g in self.groups
            ],
            "fits_agreement": {
                "rate": round(self.fits_agreement, 4),
                "runs": self.fits_runs,
                "target": FITS_AGREEMENT_TARGET,
                "disagreements": self.fits_disagreements,
            },
            "legacy_rows_excluded": self.legacy_excluded,
            "worst_rows": [_row_dict(r) for r in self.worst()],
        }


def _row_dict(r: RowResult) -> dict[str, Any]:
    return {
        "ref": r.ref,
        "profile": r.profile,
        "gpu": r.gpu,
        "gpu_count": r.gpu_count,
        "model": r.model,
        "quant": r.quant,
        "kind": r.kind,
        "tokens": r.tokens,
        "measured": r.measured,
        "predicted": round(r.predicted, 2),
        "range": [round(r.low, 2), round(r.high, 2)],
        "error": round(r.error, 4),
        "roofline": round(r.roofline, 2),
    }


def alone_of_kind(gpu: GPU, others: Sequence[GPU]) -> str | None:
    """Why ``gpu`` is alone of its kind among the data's GPUs (None when it is not)."""
    mine = hardware.memory_class(gpu)
    peers = [g for g in others if g.id != gpu.id]
    if not any(hardware.memory_class(g) == mine for g in peers):
        return f"only {mine.upper() if mine == hardware.HBM else mine} part"
    same_type = any(g.memory_type == gpu.memory_type for g in peers)
    same_arch = any(g.architecture == gpu.architecture for g in peers)
    if not same_type and not same_arch:
        return f"only {gpu.architecture} card"
    return None


def roofline(p: Prepared) -> float:
    """Naive roofline tok/s: decode = bytes per token / peak bandwidth (GPUs in series);
    prefill = 2 × weights × tokens / peak dense FP16 tensor FLOP/s of one GPU."""
    model, rig, memory, workload, _link, _family, quant = p.args
    if p.m.kind == "decode":
        mid = workload.prompt_tokens + workload.output_tokens // 2
        t = 0.0
        for d in memory.devices:
            share = d.kv_cache_bytes * mid / max(workload.context, 1) if memory.kv_pool_tokens is None else 0.0
            t += (d.weights_bytes + share) / hardware.bandwidth_bytes_per_s(d.gpu)
        return 1.0 / t if t > 0 else math.inf
    work = forward_work(model, quant, memory.placement)
    elements = sum(d.all_weights.total_elements for s in work.stages for d in s)
    peak = hardware.matmul_peak_flops(rig.gpus[0], fp16_accumulate=False)
    return peak / (2 * elements)


def _held_out_from_profiles(folder: Path | None) -> tuple[dict[str, float], set[str], dict[str, EngineProfile]]:
    """ref → held-out prediction (the in-sample one for profiles fitted on a single GPU, whose
    refs are returned too), and the profiles, from shipped (or refitted) profile files."""
    held: dict[str, float] = {}
    in_sample: set[str] = set()

    def take(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if "held_out" in row:
                held[row["ref"]] = float(row["held_out"])
            elif "fitted" in row:
                held[row["ref"]] = float(row["fitted"])
                in_sample.add(row["ref"])

    if folder is None:
        profiles = load_profiles()
        for name in profiles:
            take(profile_rows(name))
        return held, in_sample, profiles
    import tomllib

    profiles = {}
    for path in sorted(folder.glob("*.toml")):
        prof = read_profile(path)
        profiles[prof.name] = prof
        take(tomllib.loads(path.read_text(encoding="utf-8")).get("data", []))
    return held, in_sample, profiles


#: TensorRT-LLM's perf-overview rows: nvidia/*-FP8 ModelOpt checkpoints, which quantise the KV
#: cache to FP8 too; trtllm-bench fills the KV pool, up to this many sequences [D].
def _profile_of(p: Prepared) -> str:
    if p.m.engine == "exllamav2":
        return "exllamav2"
    era = "-2024" if p.m.era == dataset.ERA_2024 else ""
    return f"llama.cpp-{p.m.backend}{era}"


def accuracy_report(*, refit: bool = False, log: Callable[[str], None] | None = None) -> AccuracyReport:
    """Leave-one-GPU-out figures for every profile with rows, and the fits/OOM agreement.

    Args:
        refit: rerun the fit (minutes) instead of reading the held-out predictions stored in
            the shipped profiles.
    """
    say = log or (lambda _msg: None)
    prepared = prepare_all(say)
    if refit:
        from .fit import run

        with tempfile.TemporaryDirectory(prefix="rigplan-fit-") as tmp:
            run(Path(tmp), log=say)
            held, in_sample, profiles = _held_out_from_profiles(Path(tmp))
    else:
        held, in_sample, profiles = _held_out_from_profiles(None)

    runs, disagreements = _fits_agreement(prepared)
    rows = [
        p
        for p in prepared
        if p.m.ref in held and not p.m.legacy and not p.m.oom and p.m.tokens_per_s and _profile_of(p) in profiles
    ]
    data_gpus: dict[str, list[GPU]] = defaultdict(list)
    for p in rows:
        g = p.args[1].gpus[0]
        if all(x.id != g.id for x in data_gpus[_profile_of(p)]):
            data_gpus[_profile_of(p)].append(g)
    results = _row_results(rows, held, profiles, data_gpus)
    return AccuracyReport(
        groups=_groups(results, data_gpus, in_sample),
        rows=results,
        fits_agreement=1.0 - len(disagreements) / len(runs) if runs else 1.0,
        fits_runs=len(runs),
        fits_disagreements=disagreements,
        legacy_excluded=sum(1 for m in dataset.measurements() if m.legacy),
        profiles={name: prof.label() for name, prof in profiles.items()},
    )


def _fits_agreement(prepared: Sequence[Prepared]) -> tuple[list[Prepared], list[str]]:
    """The non-LEGACY May-2024 llama.cpp runs and where rigplan's fits / out-of-memory verdict
    disagrees.  Only the May-2024 file records out-of-memory runs; the current file lists
    completed runs only, so it is not a fits test."""
    runs = [p for p in prepared if p.m.engine == "llama.cpp" and not p.m.legacy and p.m.era == dataset.ERA_2024]
    disagreements = [
        f"{p.m.ref} {p.m.rig} {p.m.model} {p.m.quant}: predicted "
        f"{'fits' if p.fits else 'OOM'}, measured {'OOM' if p.m.oom else 'ran'}"
        for p in runs
        if p.fits == p.m.oom
    ]
    return runs, disagreements


def _row_results(
    rows: Sequence[Prepared],
    held: dict[str, float],
    profiles: dict[str, EngineProfile],
    data_gpus: dict[str, list[GPU]],
) -> list[RowResult]:
    """Each row's held-out prediction with the range the other GPUs' residuals give it
    (calibration.spreads: their band, widened to their own leave-one-GPU-out coverage)."""
    logs: dict[tuple[str, str, bool], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    facts = [{"kind": p.m.kind, "measured": 1, "moe": p.args[0].is_moe, "profile": _profile_of(p)} for p in rows]
    split = {
        (name, kind): spreads.moe_split([f for f in facts if f["profile"] == name], kind)
        for name in profiles
        for kind in ("decode", "prefill")
    }

    def group(p: Prepared) -> tuple[str, str, bool]:
        return _profile_of(p), p.m.kind, bool(p.args[0].is_moe) and split.get((_profile_of(p), p.m.kind), False)

    for p in rows:
        assert p.m.tokens_per_s
        logs[group(p)][p.m.gpu].append(math.log(p.m.tokens_per_s / held[p.m.ref]))
    results: list[RowResult] = []
    for p in rows:
        prof_name = _profile_of(p)
        prof = profiles[prof_name]
        gpu = p.args[1].gpus[0]
        band = spreads.left_out_band(logs[group(p)], p.m.gpu)
        if band is None:
            spread = prof.spreads(bool(p.args[0].is_moe))[0 if p.m.kind == "decode" else 1]
            band = (spread.low, spread.high)
        other_kinds = {hardware.hardware_kind(g) for g in data_gpus[prof_name] if g.id != gpu.id}
        widen = prof.uncalibrated_widening if hardware.hardware_kind(gpu) not in other_kinds else 1.0
        lo = min(band[0], -MIN_LOG_HALF_WIDTH) * widen
        hi = max(band[1], MIN_LOG_HALF_WIDTH) * widen
        pred = held[p.m.ref]
        assert p.m.tokens_per_s is not None
        results.append(
            RowResult(
                ref=p.m.ref,
                profile=prof_name,
                gpu=p.m.gpu,
                gpu_count=p.m.gpu_count,
                model=p.m.model,
                quant=p.m.quant,
                kind=p.m.kind,
                tokens=p.m.output_tokens or p.m.prompt_tokens,
                measured=p.m.tokens_per_s,
                predicted=pred,
                low=pred * math.exp(lo),
                high=pred * math.exp(hi),
                roofline=roofline(p),
                targeted=prof_name == TARGETED_PROFILE and alone_of_kind(gpu, data_gpus[prof_name]) is None,
            )
        )
    return results


def _groups(results: Sequence[RowResult], data_gpus: dict[str, list[GPU]], in_sample: set[str]) -> list[Group]:
    """Figures by profile, test and scope (targeted, or why a row is only reported)."""
    keyed: dict[tuple[str, str, str], list[RowResult]] = defaultdict(list)
    for r in results:
        if r.kind == "throughput":
            continue
        gpu = next(g for g in data_gpus[r.profile] if g.id == r.gpu)
        why = alone_of_kind(gpu, data_gpus[r.profile])
        if r.targeted:
            scope = "targeted"
        elif r.ref in in_sample:
            scope = "reported: only Apple chip, in-sample" if r.profile.endswith("metal") else "reported: in-sample"
        elif r.profile != TARGETED_PROFILE:
            scope = "reported: other engine"
        else:
            scope = f"reported: {why}"
        keyed[(r.profile, r.kind, scope)].append(r)
    groups = []
    for (prof_name, kind, scope), rs in sorted(keyed.items()):
        targeted = scope == "targeted"
        groups.append(
            Group(
                profile=prof_name,
                kind=kind,
                scope=scope,
                rows=len(rs),
                gpus=tuple(sorted({r.gpu for r in rs})),
                mape=float(np.mean([abs(r.error) for r in rs])),
                coverage=float(np.mean([r.covered for r in rs])),
                bias=float(np.mean([math.log(r.predicted / r.measured) for r in rs])),
                roofline_mape=float(np.mean([abs(r.roofline_error) for r in rs])),
                target_mape=(DECODE_MAPE_TARGET if kind == "decode" else PREFILL_MAPE_TARGET) if targeted else None,
                target_coverage=COVERAGE_TARGET if targeted else None,
            )
        )
    return groups


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def format_report(report: AccuracyReport) -> str:
    """Plain-text tables (benchmarks/accuracy.py and docs/accuracy.md use these)."""
    lines = [
        "Speed model accuracy — leave-one-GPU-out cross-validation (folds by catalogue GPU id; "
        f"{report.legacy_excluded} LEGACY rows excluded)",
        "",
        f"{'profile':16} {'test':8} {'scope':28} {'rows':>5} {'MAPE':>7} {'range cov.':>10} {'bias':>7}"
        f" {'roofline MAPE':>14}  target",
    ]
    for g in report.groups:
        target = ""
        if g.target_mape is not None:
            ok = "met" if g.meets else "NOT MET"
            target = f"MAPE ≤ {_pct(g.target_mape)}, cov ≥ {_pct(g.target_coverage or 0)}: {ok}"
        lines.append(
            f"{g.profile:16} {g.kind:8} {g.scope:28} {g.rows:5d} {_pct(g.mape):>7} {_pct(g.coverage):>10}"
            f" {g.bias:+7.3f} {_pct(g.roofline_mape):>14}  {target}"
        )
        lines.append(f"{'':16} {'':8} GPUs: {', '.join(g.gpus)}")
    lines += [
        "",
        f"fits / out-of-memory verdicts: {_pct(report.fits_agreement)} of {report.fits_runs} llama.cpp runs agree "
        f"(target ≥ {_pct(FITS_AGREEMENT_TARGET)})",
    ]
    lines += [f"  disagrees: {d}" for d in report.fits_disagreements]
    lines += ["", f"worst {WORST_ROWS} rows (held-out prediction vs measured):"]
    for r in report.worst():
        lines.append(
            f"  {r.ref:28} {r.profile:15} {r.gpu_count}× {r.gpu:14} {r.model:12} {r.quant:7} {r.kind[:2]}{r.tokens:<6}"
            f" measured {r.measured:9.2f} predicted {r.predicted:9.2f} ({r.error:+.1%})"
            f" range {r.low:.4g}–{r.high:.4g} roofline {r.roofline:.4g}"
        )
    lines += ["", "profiles:"] + [f"  {label}" for label in sorted(report.profiles.values())]
    from .breakdown import held_out_rows, text_breakdown

    return "\n".join(lines) + "\n\n" + text_breakdown(held_out_rows(report.profiles))


def summary_counts(report: AccuracyReport) -> Counter[str]:
    return Counter(r.profile for r in report.rows)


def markdown_report(report: AccuracyReport) -> str:
    """The figures as markdown tables (docs/accuracy.md holds exactly this; a test keeps it so)."""
    lines = [
        "| profile | test | scope | rows | GPUs | MAPE | range holds | roofline MAPE | target |",
        "|---|---|---|--:|---|--:|--:|--:|---|",
    ]
    for g in report.groups:
        target = ""
        if g.target_mape is not None:
            target = f"MAPE ≤ {_pct(g.target_mape)}, range ≥ {_pct(g.target_coverage or 0)}: "
            target += "**met**" if g.meets else "**not met**"
        lines.append(
            f"| {g.profile} | {g.kind} | {g.scope} | {g.rows} | {', '.join(g.gpus)} | {_pct(g.mape)} "
            f"| {_pct(g.coverage)} | {_pct(g.roofline_mape)} | {target} |"
        )
    lines += [
        "",
        f"Fits / out-of-memory verdicts: **{_pct(report.fits_agreement)}** of {report.fits_runs} llama.cpp runs "
        f"agree (target ≥ {_pct(FITS_AGREEMENT_TARGET)}). {report.legacy_excluded} LEGACY rows excluded.",
        "",
        f"Worst {WORST_ROWS} rows (held-out prediction):",
        "",
        "| row | profile | rig | model | quant | test | measured | predicted | error | range |",
        "|---|---|---|---|---|---|--:|--:|--:|---|",
    ]
    for r in report.worst():
        lines.append(
            f"| {r.ref} | {r.profile} | {r.gpu_count}× {r.gpu} | {r.model} | {r.quant} | {r.kind} {r.tokens} "
            f"| {r.measured:.4g} | {r.predicted:.4g} | {r.error:+.0%} | {r.low:.4g}–{r.high:.4g} |"
        )
    lines += ["", "Profiles: " + "; ".join(f"`{label}`" for label in sorted(report.profiles.values())) + "."]
    from .breakdown import held_out_rows, markdown_breakdown

    lines += ["", "### By build era, held-out method, backend, dense / MoE and GPU family", ""]
    return "\n".join(lines) + "\n" + markdown_breakdown(held_out_rows(report.profiles))
