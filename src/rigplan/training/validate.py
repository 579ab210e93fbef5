"""Framework profiles fitted and checked on published runs, leave one source out.

``calibration/measurements/training_frameworks.csv`` holds one row per published figure (NeMo /
Megatron-Bridge, NeMo AutoModel, torchtitan, torchtune, Unsloth), each with a ``source_id``.  This
module fits each framework's numbers on the rows :mod:`.rows` reads
(:class:`~.frameworks.FrameworkProfile`: ``compute_factor`` and ``fp8_share`` on dense rows,
``moe_factor`` and ``moe_layer_s`` on MoE rows), and scores every row with a profile fitted on the
*other* sources (and, beside that, with a whole GPU type or framework held out).  The ranges the estimates
print come from those held-out errors.  ``python -m rigplan.training.validate`` refits and
rewrites ``profiles/frameworks.toml``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..calibration import tomlwrite
from ..catalog import load_catalog
from .fit import nelder_mead
from .frameworks import NEUTRAL, FrameworkProfile
from .profile import load_profile
from .rows import Row, load_rows, packaged_csv
from .speed import TrainingProfile
from .step import estimate_training_speed
from .uncertainty import LATER_RELEASE, hold_out_key

__all__ = [
    "Row",
    "error_summary",
    "group_errors",
    "hold_out_errors",
    "leave_one_out",
    "leave_one_source_out",
    "load_rows",
]

# The least rows a framework needs before its fitted numbers are trusted over the neutral ones.
MIN_ROWS_TO_FIT = 4
# Start of the MoE search: (moe_factor, moe_layer_s in milliseconds).
MOE_START = (1.0, 2.0)
# moe_layer_s bounds in milliseconds per MoE layer per micro-batch.
MOE_LAYER_MS_BOUNDS = (0.0, 30.0)
# Start and bounds of (compute_factor, fp8_share).
START = (1.0, 0.6)
# compute_factor scales attention and elementwise kernels (fusion, FlashAttention generation): ×0.3–3.
BOUNDS = ((0.3, 3.0), (0.2, 1.0))
MOE_BOUNDS = (0.1, 2.0)
# Range quantiles over the held-out log errors: the 10th and 90th percentile bracket 80%.
RANGE_QUANTILES = (0.1, 0.9)
# Never print a range tighter than this (a few rows cannot promise better).
MIN_RANGE = 0.1
# Widening of a range bound so the row it sits on stays inside after the profiles file rounds the
# bound to 4 decimals.
RANGE_ROUNDING_MARGIN = 1e-3


def predict(row: Row, framework: FrameworkProfile, profile: TrainingProfile | None = None) -> float:
    """Tokens/s per GPU the model gives for ``row`` under ``framework``."""
    return estimate_training_speed(*row.args, profile or load_profile(), framework).tokens_per_s_per_gpu


def _clip(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _with(base: FrameworkProfile, x: Sequence[float], moe: Sequence[float] = (1.0, 0.0)) -> FrameworkProfile:
    """``base`` with (compute_factor, fp8_share) ``x`` and (moe_factor, moe_layer_s in ms) ``moe``."""
    cf, fp8 = _clip(x[0], BOUNDS[0]), _clip(x[1], BOUNDS[1])
    factor, layer_ms = _clip(moe[0], MOE_BOUNDS), _clip(moe[1], MOE_LAYER_MS_BOUNDS)
    return FrameworkProfile(
        base.name,
        base.label,
        cf,
        fp8,
        fp8,
        base.range_low,
        base.range_high,
        None,
        0,
        (),
        "fitted",
        base.note,
        factor,
        layer_ms / 1e3,
    )


def _loss(rows: Sequence[Row], profile: TrainingProfile) -> Callable[[Sequence[float]], float]:
    def f(x: Sequence[float]) -> float:
        fw = _with(NEUTRAL, x)
        return sum(math.log(predict(r, fw, profile) / r.measured) ** 2 for r in rows) / len(rows)

    return f


def fit_framework(rows: Sequence[Row], profile: TrainingProfile | None = None) -> tuple[float, float]:
    """(compute_factor, fp8_share) minimising the squared log error over ``rows``; the FP8 share
    stays at its prior where the rows hold no low-bit run."""
    prof = profile or load_profile()
    if not any(r.args[1].precision.low_bit for r in rows):
        x = nelder_mead(lambda v: _loss(rows, prof)((v[0], START[1])), (START[0],), steps=120)
        return max(BOUNDS[0][0], min(BOUNDS[0][1], x[0])), START[1]
    x = nelder_mead(_loss(rows, prof), START, steps=200)
    fw = _with(NEUTRAL, x)
    return fw.compute_factor, fw.fp8_share


def fit_moe(rows: Sequence[Row], numbers: tuple[float, float], profile: TrainingProfile) -> tuple[float, float]:
    """(moe_factor, moe_layer_s in ms) minimising the squared log error over the MoE ``rows``
    ((1.0, 0.0) without any)."""
    moe = [r for r in rows if r.moe]
    if not moe:
        return 1.0, 0.0

    def loss(v: Sequence[float]) -> float:
        return sum(math.log(predict(r, _with(NEUTRAL, numbers, v), profile) / r.measured) ** 2 for r in moe)

    v = nelder_mead(loss, MOE_START, steps=120)
    return _clip(v[0], MOE_BOUNDS), _clip(v[1], MOE_LAYER_MS_BOUNDS)


def fit_profile(rows: Sequence[Row], profile: TrainingProfile) -> FrameworkProfile:
    """One framework's numbers: (compute_factor, fp8_share) on its dense rows, then the MoE factor
    on its MoE rows (too few dense rows: the neutral numbers)."""
    dense = [r for r in rows if not r.moe]
    numbers = fit_framework(dense, profile) if len(dense) >= MIN_ROWS_TO_FIT else (START[0], START[1])
    return _with(NEUTRAL, numbers, fit_moe(rows, numbers, profile))


def _fold(rows: Sequence[Row], held: Callable[[Row], bool], profile: TrainingProfile) -> dict[str, FrameworkProfile]:
    """Profiles fitted on the rows ``held`` rejects; a framework left with no rows gets one fitted
    on every framework's remaining rows (what a user of an unseen framework would get)."""
    rest = [r for r in rows if not held(r)]
    pooled = fit_profile(rest, profile) if any(not any(r.framework == n for r in rest) for n in _names(rows)) else None
    out = {}
    for name in _names(rows):
        own = [r for r in rest if r.framework == name]
        out[name] = fit_profile(own, profile) if own else pooled or NEUTRAL
    return out


def _names(rows: Sequence[Row]) -> list[str]:
    return sorted({r.framework for r in rows})


def leave_one_out(
    rows: Sequence[Row], key: Callable[[Row], str], profile: TrainingProfile | None = None
) -> list[tuple[Row, float]]:
    """(row, predicted) with the rows of each ``key`` value (source, GPU, framework) predicted
    from profiles fitted on the rows of the other values (:func:`_fold`)."""
    prof = profile or load_profile()
    out = []
    for value in sorted({key(r) for r in rows}):
        fold = _fold(rows, lambda r, v=value: key(r) == v, prof)  # type: ignore[misc]
        out += [(r, predict(r, fold[r.framework], prof)) for r in rows if key(r) == value]
    return out


def leave_one_source_out(rows: Sequence[Row], profile: TrainingProfile | None = None) -> list[tuple[Row, float]]:
    """(row, predicted) with each source's rows predicted from profiles fitted on the other sources."""
    return leave_one_out(rows, lambda r: r.source_id, profile)


#: The other hold-outs reported beside leave-one-source-out: a GPU type, a framework …
HOLD_OUTS: dict[str, Callable[[Row], str]] = {
    "GPU": lambda r: r.gpu_id,
    "framework": lambda r: r.framework,
}
#: … and a release newer than the rows fitted (:func:`later_release_out`, uncertainty.LATER_RELEASE).


def quantile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return 0.0
    i = q * (len(s) - 1)
    lo, hi = math.floor(i), math.ceil(i)
    return s[lo] + (s[hi] - s[lo]) * (i - lo)


def error_summary(pairs: Sequence[tuple[Row, float]]) -> dict[str, Any]:
    """MAPE, signed mean, 10th/90th percentile of predicted/measured − 1, and n."""
    errs = [p / r.measured - 1 for r, p in pairs]
    if not errs:
        return {"rows": 0, "mape": None, "bias": None, "p10": None, "p90": None}
    return {
        "rows": len(errs),
        "mape": sum(abs(e) for e in errs) / len(errs),
        "bias": sum(errs) / len(errs),
        "p10": quantile(errs, RANGE_QUANTILES[0]),
        "p90": quantile(errs, RANGE_QUANTILES[1]),
    }


def estimate_range(pairs: Sequence[tuple[Row, float]]) -> tuple[float, float]:
    """Relative (low, high) bounds of a *estimate* such that the measured value falls inside for
    80% of held-out rows: measured = predicted / (1 + e), so the bounds invert the error quantiles."""
    errs = [p / r.measured - 1 for r, p in pairs]
    if not errs:
        return -0.3, 0.3
    low_err, high_err = outer_quantiles(errs)
    lo = 1 / (1 + high_err) - 1 - RANGE_ROUNDING_MARGIN
    hi = 1 / (1 + low_err) - 1 + RANGE_ROUNDING_MARGIN
    return min(lo, -MIN_RANGE), max(hi, MIN_RANGE)


def outer_quantiles(errs: Sequence[float]) -> tuple[float, float]:
    """The held-out errors at the 10th and 90th percentile, taken on the rows themselves and
    rounded outward (not interpolated), so at least 80% of the rows lie between them: an
    interpolated quantile of 32 rows leaves 4 on each side out (75% held, seen on the MoE rows)."""
    s = sorted(errs)
    n = len(s) - 1
    return s[math.floor(RANGE_QUANTILES[0] * n)], s[math.ceil(RANGE_QUANTILES[1] * n)]


# ---- the profiles file ------------------------------------------------------------------------
# Frameworks with no throughput rows of their own, derived from a fitted one through a published
# speed ratio (the ratio rows are in training_frameworks.csv where the source prints one):
# * unsloth = fsdp × the augmxnt train-bench speed-up over torchtune + torch.compile (Llama 3 8B
#   LoRA: ×1.24 on an RTX 4090, ×1.28 on an RTX 3090; the mean of the rows is used);
# * hf-trainer = unsloth ÷ 2: Unsloth's benchmark table gives "2x" over Hugging Face + FA2 for
#   Llama 3.1 8B and Llama 3.3 70B QLoRA (unsloth.ai/docs/basics/unsloth-benchmarks);
# * deepspeed = fsdp: ZeRO-3 and FSDP FULL_SHARD run the same PyTorch kernels and the same
#   collectives (ZeRO paper §5; PyTorch FSDP docs); no DeepSpeed throughput table was found.
UNSLOTH_OVER_HF_TRAINER = 2.0
# Derived profiles extrapolate: their range is the fitted profile's widened by this factor.
DERIVED_RANGE_WIDENING = 1.5
FRAMEWORK_LABELS = {
    "fsdp": "PyTorch FSDP/FSDP2 (torchtitan, llm-foundry, torchtune, NeMo AutoModel)",
    "megatron": "Megatron-Core (NeMo, Megatron-Bridge; Transformer Engine)",
    "deepspeed": "DeepSpeed ZeRO",
    "hf-trainer": "Hugging Face Trainer / TRL / Axolotl",
    "unsloth": "Unsloth (one GPU)",
}


def unsloth_speedup(text: str | None = None) -> tuple[float, str]:
    """Mean published Unsloth speed-up over torchtune + compile, and the source."""
    vals, sources = [], set()
    for r in csv.DictReader(io.StringIO(text or packaged_csv())):
        if r["metric"] == "speedup_vs_torchtune_compile":
            vals.append(float(r["value"]))
            sources.add(r["source_id"])
    return sum(vals) / len(vals), ", ".join(sorted(sources))


def fitted_framework(
    name: str, rows: Sequence[Row], pairs: Sequence[tuple[Row, float]], profile: TrainingProfile
) -> dict[str, Any]:
    """TOML table of a fitted framework from its dense rows, its range from its held-out pairs."""
    own = [r for r in rows if r.framework == name]
    fitted = fit_profile(own, profile)
    cf, fp8 = fitted.compute_factor, fitted.fp8_share
    pairs = [(r, p) for r, p in pairs if r.framework == name]
    lo, hi = estimate_range(pairs)
    summary = error_summary(pairs)
    return {
        "label": FRAMEWORK_LABELS[name],
        "compute_factor": round(cf, 4),
        "fp8_share": round(fp8, 4),
        "fp4_share": round(fp8, 4),
        "moe_factor": round(fitted.moe_factor, 4),
        "moe_layer_s": round(fitted.moe_layer_s, 6),
        "range_low": round(lo, 4),
        "range_high": round(hi, 4),
        "loso_mape": round(summary["mape"], 4),
        "rows": len(own),
        "sources": sorted({r.source_id for r in own}),
        "basis": "fitted",
        "note": "NVFP4 assumed to reach the FP8 share of its peak (not fitted; checked on GB200 / GB300 NVFP4 rows)",
    }


def _derived(base: dict[str, Any], factor: float, basis: str) -> dict[str, Any]:
    return {
        **base,
        "compute_factor": round(base["compute_factor"] * factor, 4),
        "range_low": round(base["range_low"] * DERIVED_RANGE_WIDENING, 4),
        "range_high": round(base["range_high"] * DERIVED_RANGE_WIDENING, 4),
        "loso_mape": None,
        "rows": 0,
        "basis": basis,
        "note": "no published throughput rows of its own: " + basis,
    }


def build_profiles() -> tuple[dict[str, dict[str, Any]], list[tuple[Row, float]]]:
    """Every framework's TOML table, and the held-out pairs of the fitted ones."""
    rows, _ = load_rows()
    profile = load_profile()
    out: dict[str, dict[str, Any]] = {}
    pairs = leave_one_source_out(rows, profile)
    for name in ("fsdp", "megatron"):
        out[name] = fitted_framework(name, rows, pairs, profile)
    speedup, src = unsloth_speedup()
    out["deepspeed"] = _derived(out["fsdp"], 1.0, "assumed equal to fsdp (ZeRO-3 = FSDP FULL_SHARD, same kernels)")
    out["unsloth"] = _derived(
        out["fsdp"], speedup, f"fsdp × {speedup:.2f}, the published speed-up over torchtune ({src})"
    )
    out["hf-trainer"] = _derived(
        out["unsloth"],
        1 / UNSLOTH_OVER_HF_TRAINER,
        f"unsloth ÷ {UNSLOTH_OVER_HF_TRAINER:g} (Unsloth benchmarks: 2x over HF + FA2)",
    )
    for name in ("deepspeed", "unsloth", "hf-trainer"):
        out[name]["label"] = FRAMEWORK_LABELS[name]
    return out, pairs


def group_errors(
    pairs: Sequence[tuple[Row, float]],
    bounds: Mapping[str, tuple[float, float]] | None = None,
    wide: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Held-out errors by framework, by dense / MoE, by GPU architecture; with ``bounds``
    (framework → relative range) also how often the range holds the measurement; ``wide``
    ("dense" / "MoE" → range) widens it as estimates do where they extrapolate."""
    catalog = load_catalog()
    groups: dict[str, list[tuple[Row, float]]] = {}
    for r, p in pairs:
        arch = catalog.gpus[r.gpu_id].architecture
        for key in (f"framework {r.framework}", "MoE" if r.moe else "dense", f"GPU {arch}"):
            groups.setdefault(key, []).append((r, p))
    groups["all"] = list(pairs)
    moe = estimate_range([(r, p) for r, p in pairs if r.moe]) if any(r.moe for r, _ in pairs) else None

    def holds(r: Row, p: float) -> bool:
        # The range an estimate prints (uncertainty.speed_range): MoE rows get the MoE bounds too.
        lo, hi = bounds[r.framework] if bounds else (0.0, 0.0)
        if r.moe and moe is not None:
            lo, hi = min(lo, moe[0]), max(hi, moe[1])
        if wide and (w := wide.get("MoE" if r.moe else "dense")):
            lo, hi = min(lo, w[0]), max(hi, w[1])
        return p * (1 + lo) <= r.measured <= p * (1 + hi)

    out = {}
    for k, v in sorted(groups.items()):
        out[k] = error_summary(v)
        if bounds:
            out[k]["coverage"] = sum(holds(r, p) for r, p in v) / len(v)
    if moe is not None and "MoE" in out:
        # The bounds MoE estimates print (uncertainty.speed_range), as the coverage above counts them.
        out["MoE"]["range_low"], out["MoE"]["range_high"] = moe
    return out


def later_release_out(rows: Sequence[Row], profile: TrainingProfile | None = None) -> list[tuple[Row, float]]:
    """(row, predicted) with each month's rows predicted from profiles fitted on the rows dated
    before that month only: what a framework's next release looks like to today's fit (the hold-out
    the published tables of new releases are; from Megatron-Bridge 26.04 to 26.06 the same MoE
    layout on GB300 ran 44 % faster)."""
    prof = profile or load_profile()
    out = []
    for month in sorted({r.date[:7] for r in rows if r.date}):
        if not any(r.date and r.date[:7] < month for r in rows):
            continue
        fold = _fold(rows, lambda r, m=month: not (r.date and r.date[:7] < m), prof)  # type: ignore[misc]
        out += [(r, predict(r, fold[r.framework], prof)) for r in rows if r.date[:7] == month]
    return out


def hold_out_errors(
    rows: Sequence[Row], bounds: Mapping[str, tuple[float, float]], profile: TrainingProfile | None = None
) -> dict[str, dict[str, Any]]:
    """Dense / MoE errors and range coverage with a whole GPU type, or a whole framework, held out
    of the fit (:data:`HOLD_OUTS`), and with each release predicted from the earlier ones
    (:func:`later_release_out`), beside the leave-one-source-out groups.  Each hold-out's own 80%
    bounds (``range_low`` / ``range_high``) are what an estimate promises when it extrapolates
    the same way (a GPU with no row, a derived framework, a release newer than the data:
    uncertainty.speed_range); coverage counts them."""
    out = {}
    held = {name: leave_one_out(rows, key, profile) for name, key in HOLD_OUTS.items()}
    held[LATER_RELEASE] = later_release_out(rows, profile)
    for name, pairs in held.items():
        wide = {
            part: estimate_range([(r, p) for r, p in pairs if r.moe == (part == "MoE")])
            for part in ("dense", "MoE")
            if any(r.moe == (part == "MoE") for r, _ in pairs)
        }
        groups = group_errors(pairs, bounds, wide)
        for part in ("dense", "MoE", "all"):
            if part in groups:
                extra = dict(zip(("range_low", "range_high"), wide[part], strict=True)) if part in wide else {}
                out[hold_out_key(name, part)] = {**groups[part], **extra}
    return out


def accuracy_groups(profiles: Mapping[str, Mapping[str, Any]], pairs: Sequence[tuple[Row, float]]) -> dict[str, Any]:
    """Every accuracy group the profiles file stores: leave-one-source-out by framework, dense /
    MoE and GPU family, then the GPU, framework and later-release hold-outs."""
    bounds = {k: (v["range_low"], v["range_high"]) for k, v in profiles.items()}
    rows, _ = load_rows()
    held = hold_out_errors(rows, bounds)
    # every estimate's range reaches the later-release bounds too (uncertainty.speed_range)
    later = {
        part: (g["range_low"], g["range_high"])
        for part in ("dense", "MoE")
        if "range_low" in (g := held.get(hold_out_key(LATER_RELEASE, part), {}))
    }
    return {**group_errors(pairs, bounds, later), **held}


def framework_accuracy(*, refit: bool = False) -> dict[str, dict[str, Any]]:
    """Held-out accuracy groups: from the shipped profiles file, or recomputed."""
    if refit:
        profiles, pairs = build_profiles()
        return accuracy_groups(profiles, pairs)
    from .frameworks import frameworks_data

    return {k: dict(v) for k, v in frameworks_data().get("accuracy", {}).items()}


# Targets of issue 14 for held-out tokens/s per GPU: dense and MoE MAPE, range coverage.
TARGET_MAPE = {"dense": 0.15, "MoE": 0.25}
TARGET_COVERAGE = 0.8


def format_framework_accuracy(groups: Mapping[str, Mapping[str, Any]]) -> str:
    """Text lines for ``rigplan accuracy``."""
    lines = [
        "training by framework (leave-one-source-out on training_frameworks.csv unless a line says",
        "what else was held out; 'later release': each release predicted from the earlier ones;",
        "tokens/s per GPU):",
    ]
    width = max((len(k) for k, g in groups.items() if g.get("rows")), default=0)
    for key, g in groups.items():
        if not g.get("rows"):
            continue
        target = ""
        if key in TARGET_MAPE:
            ok = g["mape"] <= TARGET_MAPE[key] and g.get("coverage", 0) >= TARGET_COVERAGE
            target = f"  target ≤ {TARGET_MAPE[key]:.0%}, ≥ {TARGET_COVERAGE:.0%} covered: {'met' if ok else 'NOT MET'}"
        cover = f", range holds {g['coverage']:.0%}" if "coverage" in g else ""
        lines.append(f"  {key:{width}} n={g['rows']:3}  MAPE {g['mape']:.1%}  bias {g['bias']:+.1%}{cover}{target}")
    return "\n".join(lines)


#: The comment at the top of the written framework profiles.
PROFILES_HEADER = """Framework profiles: fitted by `python -m rigplan.training.validate` — do not edit by hand.
compute_factor × the training-fit-1 efficiencies; fp8_share = FP8 linears' share of the FP8 peak
relative to bf16's share of its own; ranges bracket 80% of leave-one-source-out errors.
calibrated_gpus: GPUs with published training rows; estimates on any other GPU extrapolate
(wider range)."""


def profiles_toml(profiles: dict[str, dict[str, Any]], groups: Mapping[str, Mapping[str, Any]]) -> str:
    rows, _ = load_rows()
    doc = {
        "calibrated_gpus": sorted({r.gpu_id for r in rows}),
        "framework": {name: _present(table) for name, table in profiles.items()},
        "accuracy": {
            key: _present({k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()})
            for key, s in groups.items()
        },
    }
    return tomlwrite.dumps(doc, PROFILES_HEADER)


def _present(table: Mapping[str, Any]) -> dict[str, Any]:
    """``table`` without its unset (None) entries, which TOML cannot hold."""
    return {k: v for k, v in table.items() if v is not None}


def main() -> None:  # pragma: no cover - writes the profiles file
    from pathlib import Path

    profiles, pairs = build_profiles()
    groups = accuracy_groups(profiles, pairs)
    path = Path(__file__).parent / "profiles" / "frameworks.toml"
    path.write_text(profiles_toml(profiles, groups), encoding="utf-8")
    for key, s in groups.items():
        spread = f"p10 {s['p10']:+.1%} p90 {s['p90']:+.1%} covered {s.get('coverage', 0):.0%}"
        print(f"{key:32} n={s['rows']:3} MAPE {s['mape']:.1%} bias {s['bias']:+.1%} {spread}")
    for r, p in pairs:
        print(f"  {r.source_id:24} {r.label:20} {r.gpu_id:10} {p / r.measured - 1:+.0%}")


if __name__ == "__main__":  # pragma: no cover
    main()
