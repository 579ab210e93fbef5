"""Profile files: the TOML document of a fitted profile, its fit facts and its stored rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..speed.profile import EngineBehaviour, EngineProfile, SpeedParameters
from . import tomlwrite
from .fit_rows import FitResult


def _parameters_doc(params: SpeedParameters) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name in SpeedParameters.names():
        if name.startswith("sm_cycles_per_weight."):
            continue
        doc[name] = params.get(name)
    doc["sm_cycles_per_weight"] = dict(sorted(params.sm_cycles_per_weight.items()))
    return doc


#: Behaviour facts every profile file states; the others are written where they differ from
#: the default, so the profiles of engines without those kernels stay as they were.
_BEHAVIOUR_ALWAYS = (
    "fp16_accumulate",
    "kv_read_per_query_head",
    "micro_batch_tokens",
    "batch_tokens",
    "pipeline_parallel_prefill",
    "flash_attention",
    "cuda_graphs",
    "custom_all_reduce",
    "int8_mma_prefill",
    "amd_vector_basis",
    "amd_wmma_prefill",
)


def _behaviour_doc(b: EngineBehaviour) -> dict[str, Any]:
    """The profile file's ``[behaviour]`` table: every fact that reads back to ``b``."""
    return {
        f.name: getattr(b, f.name)
        for f in fields(EngineBehaviour)
        if f.name in _BEHAVIOUR_ALWAYS or getattr(b, f.name) != f.default
    }


def profile_doc(
    profile: EngineProfile, *, fit: dict[str, Any] | None = None, data: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The TOML document of a profile."""
    doc: dict[str, Any] = {
        "name": profile.name,
        "version": profile.version,
        "engines": list(profile.engines),
        "backend": profile.backend,
        "rows": profile.rows,
        "calibrated_kinds": list(profile.calibrated_kinds),
        "calibrated_gpus": list(profile.calibrated_gpus),
        "calibrated_model_kinds": list(profile.calibrated_model_kinds),
        "first_build": profile.first_build,
        **({"fitted_builds": list(profile.fitted_builds)} if profile.fitted_builds else {}),
        "uncalibrated_widening": profile.uncalibrated_widening,
        "source": profile.source,
        "notes": profile.notes,
        "behaviour": _behaviour_doc(profile.behaviour),
        "parameters": _parameters_doc(profile.parameters),
        "spread": {
            kind: {
                k: v for k, v in (("low", s.low), ("high", s.high), ("mape", s.mape), ("rows", s.rows)) if v is not None
            }
            for kind, s in (
                ("decode", profile.decode_spread),
                ("prefill", profile.prefill_spread),
                ("decode_moe", profile.moe_decode_spread),
                ("prefill_moe", profile.moe_prefill_spread),
            )
            if s is not None
        },
    }
    if fit:
        doc["fit"] = fit
    if data:
        doc["data"] = data
    return doc


def data_rows(result: FitResult) -> list[dict[str, Any]]:
    out = []
    for r in result.rows:
        m = r.m
        row: dict[str, Any] = {
            "ref": m.ref,
            "engine": m.engine,
            "gpu": m.gpu,
            "gpu_count": m.gpu_count,
            "model": m.model,
            "quant": m.quant,
            "kind": m.kind,
            "prompt_tokens": m.prompt_tokens,
            "output_tokens": m.output_tokens,
            "measured": m.tokens_per_s or 0.0,
            "fitted": round(result.fitted[m.ref], 3),
        }
        if m.ref in result.held_out:
            row["held_out"] = round(result.held_out[m.ref], 3)
        if m.ref in result.held_out_source:
            row["held_out_source"] = round(result.held_out_source[m.ref], 3)
        row.update(
            {
                "era": m.era,
                "backend": m.backend,
                "source_id": m.source_id,
                "build": m.build or 0,
                "depth": m.depth,
                **({"flash_attention": m.flash_attention} if m.flash_attention is not None else {}),
                "moe": bool(r.args[0].is_moe),
            }
        )
        out.append(row)
    return out


HEADER = (
    "Engine profile for rigplan's speed model — written by `python -m rigplan.calibration.fit`.\n"
    "Do not edit by hand: change prior_profiles/*.toml or the fit and rerun it.\n"
)


def write_profile(
    folder: Path, profile: EngineProfile, *, fit: dict[str, Any] | None = None, data: list[dict[str, Any]] | None = None
) -> Path:
    path = folder / f"{profile.name}.toml"
    path.write_text(tomlwrite.dumps(profile_doc(profile, fit=fit, data=data), HEADER), encoding="utf-8")
    return path


def fit_info(result: FitResult, today: dt.date) -> dict[str, Any]:
    rows = result.rows
    return {
        "date": today,
        "method": "MAP Levenberg-Marquardt on log(predicted/measured), Gaussian log priors; "
        "spread = 10th-90th percentile of the held-out log residuals (leave-one-GPU-out and "
        "leave-one-source-out together), widened until each method's leave-one-fold-out coverage "
        "reaches 80 %; dense and MoE apart where both have 20+ rows",
        "fitted": list(result.names),
        "folds": sorted({r.m.gpu for r in rows}),
        "source_folds": sorted({r.m.source_id for r in rows if r.m.source_id}),
        "excluded": "LEGACY rows, out-of-memory rows, the source's own flagged outliers, rows whose "
        "model or GPU rigplan lacks",
    }


__all__ = ["HEADER", "data_rows", "fit_info", "profile_doc", "write_profile"]
