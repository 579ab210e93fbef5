"""Fit the engine profiles to the published measurements and write ``profiles/*.toml``.

    python -m rigplan.calibration.fit            # fit, cross-validate, write every profile
    python -m rigplan.calibration.fit --priors   # write the prior profiles only (no fit)

Method: maximum a posteriori fit of each profile's parameters in log space (Levenberg–
Marquardt on log(predicted / measured), Gaussian priors around the values of ``priors.py``),
decode and prefill parameters separately.  Leave-one-GPU-out cross-validation (folds by
catalogue GPU id, LEGACY rows excluded) gives the residuals whose 10th–90th percentiles set the
ranges; every row is stored in the profile with its measured, fitted and held-out predictions.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..speed.profile import EngineProfile, SpeedParameters, Spread
from . import dataset, priors, spreads
from .fit_doc import data_rows, fit_info, write_profile
from .fit_rows import FitResult, Prepared, calibration_rows, prepare, prepare_all, prepare_or_reason

RANGE_QUANTILES = spreads.RANGE_QUANTILES
#: Prior log-sd of a parameter the fit moves, unless the prior profile says otherwise: weak
#: (a factor e either way is one sd), so the rows decide wherever they have something to say.
DEFAULT_PRIOR_LOG_SD = 1.0
#: A profile fitted on one GPU cannot be cross-validated: its in-sample residual quantiles are
#: widened by this factor for the ranges [D].
SINGLE_GPU_SPREAD_WIDENING = 2.0
#: Levenberg–Marquardt: iterations, finite-difference step (log space), damping start.
MAX_ITERATIONS = 60
#: A held-out fold starts from the full fit, a few steps away from its optimum.
FOLD_ITERATIONS = 10
FD_STEP = 1e-4
DAMPING_START = 1e-2
#: Efficiencies are fractions of a peak: kept below this.
MAX_EFFICIENCY = 0.98
VERBOSE = False
EFFICIENCIES = ("memory_efficiency_hbm", "memory_efficiency_gddr", "memory_efficiency_unified", "tensor_efficiency")

#: What each fitted profile fits, on which rows.
DECODE_CUDA = (
    "memory_efficiency_gddr",
    "memory_efficiency_hbm",
    "sm_cycles_per_weight.float",
    "sm_cycles_per_weight.q8_0",
    "sm_cycles_per_weight.legacy",
    "sm_cycles_per_weight.k4",
    "sm_cycles_per_weight.k6",
    "sm_cycles_per_weight.k_low",
    "launch_overhead_per_layer_s",
    "serial_overhead_per_layer_s",
    "layer_split_hop_s",
    "attention_read_factor",
)
PREFILL_CUDA = (
    "tensor_efficiency",
    "sm_flops_per_cycle_cap",
    "dequant_sm_cycles_per_weight",
    "attention_score_passes",
    "activation_passes",
    "prefill_overhead_per_layer_s",
    "pipeline_hop_s",
)
DECODE_METAL = (
    "memory_efficiency_unified",
    "sm_cycles_per_weight.float",
    "sm_cycles_per_weight.k4",
    "sm_cycles_per_weight.k6",
    "serial_overhead_per_layer_s",
    "attention_read_factor",
)
PREFILL_METAL = (
    "tensor_efficiency",
    "dequant_sm_cycles_per_weight",
    "attention_score_passes",
    "prefill_overhead_per_layer_s",
)
DECODE_EXLLAMA = (
    "memory_efficiency_gddr",
    "sm_cycles_per_weight.exl2",
    "sm_cycles_per_weight.int4",
    "launch_overhead_per_layer_s",
)


def profile_from(
    prior: priors.PriorProfile,
    params: SpeedParameters,
    *,
    version: str = "prior",
    decode: Spread | None = None,
    prefill: Spread | None = None,
    rows: int = 0,
    kinds: tuple[str, ...] = (),
    gpus: tuple[str, ...] = (),
    model_kinds: tuple[str, ...] = (),
    builds: tuple[int, int] | None = None,
) -> EngineProfile:
    return EngineProfile(
        name=prior.name,
        version=version,
        engines=prior.engines,
        backend=prior.backend,
        parameters=params,
        behaviour=prior.behaviour,
        decode_spread=decode or prior.spread(),
        prefill_spread=prefill or prior.spread(),
        rows=rows,
        calibrated_kinds=kinds,
        source=prior.source,
        notes=prior.notes,
        first_build=min(prior.first_build, builds[0]) if builds and prior.first_build else prior.first_build,
        fitted_builds=builds,
        calibrated_gpus=gpus,
        calibrated_model_kinds=model_kinds,
    )


def _clip(names: Sequence[str], x: np.ndarray) -> np.ndarray:
    out = x.copy()
    for i, n in enumerate(names):
        if n in EFFICIENCIES:
            out[i] = min(out[i], math.log(MAX_EFFICIENCY))
    return out


def fit_parameters(
    rows: Sequence[Prepared],
    prior: priors.PriorProfile,
    start: SpeedParameters,
    names: Sequence[str],
    *,
    alternatives: Sequence[dict[str, float]] = (),
    iterations: int = MAX_ITERATIONS,
) -> SpeedParameters:
    """MAP fit of ``names`` on ``rows`` (log residuals + Gaussian log priors), from ``start``
    and from each alternative start; the lowest cost wins."""
    if not rows:
        return start
    best, best_cost = _fit_from(rows, prior, start, names, iterations)
    for alt in alternatives:
        relevant = {k: v for k, v in alt.items() if k in names}
        if not relevant:
            continue
        params, cost = _fit_from(rows, prior, start.with_values(relevant), names, iterations)
        if cost < best_cost:
            best, best_cost = params, cost
    return best


def _fit_from(
    rows: Sequence[Prepared],
    prior: priors.PriorProfile,
    start: SpeedParameters,
    names: Sequence[str],
    iterations: int = MAX_ITERATIONS,
) -> tuple[SpeedParameters, float]:
    x_prior = np.log([max(prior.parameters.get(n), 1e-12) for n in names])
    sd = np.array([prior.prior_log_sd.get(n, DEFAULT_PRIOR_LOG_SD) for n in names])
    measured = np.log([r.m.tokens_per_s or 1.0 for r in rows])

    def params_at(x: np.ndarray) -> SpeedParameters:
        return start.with_values(dict(zip(names, np.exp(x).tolist(), strict=True)))

    def residuals(x: np.ndarray) -> np.ndarray:
        prof = profile_from(prior, params_at(x))
        pred = np.log([max(r.predict(prof), 1e-12) for r in rows])
        return np.concatenate([pred - measured, (x - x_prior) / sd])

    x = _clip(names, np.log([max(start.get(n), 1e-12) for n in names]))
    r = residuals(x)
    cost = float(r @ r)
    lam = DAMPING_START
    for _ in range(iterations):
        jac = np.empty((len(r), len(x)))
        for j in range(len(x)):
            dx = np.zeros(len(x))
            dx[j] = FD_STEP
            jac[:, j] = (residuals(x + dx) - r) / FD_STEP
        a = jac.T @ jac
        g = jac.T @ r
        improved = False
        while lam < 1e8:
            step = -np.linalg.solve(a + lam * np.diag(np.diag(a) + 1e-9), g)
            x_new = _clip(names, x + step)
            r_new = residuals(x_new)
            c_new = float(r_new @ r_new)
            if c_new < cost:
                improved = cost - c_new > 1e-9 * max(cost, 1.0)
                x, r, cost = x_new, r_new, c_new
                lam = max(lam / 3, 1e-7)
                break
            lam *= 4
        if VERBOSE:
            print(f"      cost {cost:.5f} lam {lam:.1e}")
        if not improved:
            break
    return params_at(x), cost


Fitter = Callable[[Sequence[Prepared], Sequence[Prepared], SpeedParameters], SpeedParameters]


def _leave_out(
    rows: Sequence[Prepared],
    key: Callable[[Prepared], str],
    fit: Fitter,
    start: SpeedParameters,
    prior: priors.PriorProfile,
    log: Callable[[str], None],
) -> dict[str, float]:
    """Held-out predictions: each fold (GPU or source) predicted by a fit on the others."""
    folds = sorted({key(r) for r in rows})
    out: dict[str, float] = {}
    if len(folds) < 2:
        return out
    for fold in folds:
        train = [r for r in rows if key(r) != fold]
        params = fit([r for r in train if r.m.kind == "decode"], [r for r in train if r.m.kind == "prefill"], start)
        # the fold's own build span: a left-out build past it is priced as the product would
        # price it, at the newest fitted build (speed.with_settings)
        builds = sorted(r.m.build for r in train if r.m.build)
        prof = profile_from(prior, params, builds=(builds[0], builds[-1]) if builds else None)
        for r in rows:
            if key(r) == fold:
                out[r.m.ref] = r.predict(prof)
        log(f"    left out {fold}")
    return out


def fit_profile(
    prior: priors.PriorProfile,
    rows: Sequence[Prepared],
    decode_names: Sequence[str],
    prefill_names: Sequence[str],
    *,
    today: dt.date,
    log: Callable[[str], None] = print,
) -> FitResult:
    """Fit on all rows, then leave each GPU (and each source) out for held-out predictions."""

    def fit(
        dec: Sequence[Prepared],
        pre: Sequence[Prepared],
        start: SpeedParameters,
        alternatives: Sequence[dict[str, float]] = (),
        iterations: int = FOLD_ITERATIONS,
    ) -> SpeedParameters:
        kw: dict[str, Any] = {"alternatives": alternatives, "iterations": iterations}
        p = fit_parameters(dec, prior, start, decode_names, **kw) if decode_names else start
        return fit_parameters(pre, prior, p, prefill_names, **kw) if prefill_names else p

    decode_rows = [r for r in rows if r.m.kind == "decode"]
    prefill_rows = [r for r in rows if r.m.kind == "prefill"]
    full = fit(decode_rows, prefill_rows, prior.parameters, prior.alternative_starts, MAX_ITERATIONS)
    log(f"  {prior.name}: fitted on {len(decode_rows)} decode + {len(prefill_rows)} prefill rows")
    fitted = {r.m.ref: r.predict(profile_from(prior, full)) for r in rows}
    held_out = _leave_out(rows, lambda r: r.m.gpu, fit, full, prior, log)
    by_source = _leave_out(rows, lambda r: r.m.source_id or r.m.source, fit, full, prior, log)
    builds = sorted(r.m.build for r in rows if r.m.build)
    profile = profile_from(
        prior,
        full,
        version=f"fit-{today.isoformat()}",
        rows=len(rows),
        kinds=tuple(sorted({r.kind for r in rows})),
        gpus=tuple(sorted({r.m.gpu for r in rows})),
        model_kinds=tuple(sorted({"moe" if r.args[0].is_moe else "dense" for r in rows})),
        builds=(builds[0], builds[-1]) if builds else None,
    )
    names = tuple(decode_names) + tuple(prefill_names)
    result = FitResult(profile, list(rows), fitted, held_out, names, by_source)
    widen = 1.0 if held_out else SINGLE_GPU_SPREAD_WIDENING
    return dataclasses.replace(result, profile=spreads.with_spreads(profile, data_rows(result), widen))


#: Current-era parameters refitted per backend (the CUDA fit is their prior and start).
DECODE_BACKEND = (
    "memory_efficiency_gddr",
    "memory_efficiency_hbm",
    "memory_efficiency_unified",
    "sm_cycles_per_weight.k4",
    "sm_cycles_per_weight.q8_0",
    "launch_overhead_per_layer_s",
    "serial_overhead_per_layer_s",
    "expert_overhead_per_layer_s",
    "attention_read_factor",
    "active_expert_overhead_s",
)
PREFILL_BACKEND = (
    "tensor_efficiency",
    "dequant_sm_cycles_per_weight",
    "attention_score_passes",
    "prefill_overhead_per_layer_s",
    "attention_efficiency",
    "float_expert_call_s",
    "flash_kv_reads_per_query",
    "moe_gemm_efficiency",  # from each backend's own prior (OWN_PRIORS lists): CUDA's 0.68 not inherited
)
#: Vulkan also fits the build era of its prompt kernels (its rows span b5863–b9174 on the same
#: chips), like CUDA since the eighth session.  ROCm does not: its rows put the term below 1
#: (newer builds slower, 0.83 per 1000 builds), which no kernel change explains, for 2.7 points
#: of held-out MAPE [D].
PREFILL_VULKAN = (*PREFILL_BACKEND, "prefill_speedup_per_kilobuild")
#: Vulkan keeps no per-expert decode cost: fitted (5.7 us) it lowered Vulkan's held-out decode
#: MAPE 17.2 -> 15.6 % but narrowed the band the other sources give, leaving kyuz0's R9700 rows
#: (1.3x under vulkanforge's RX 9070 XT, the same chip) outside it: Vulkan LOSO coverage 74.5 ->
#: 63.6 %, all 2025-26 decode LOSO 80.7 -> 77.1 %, under the 80 % promise [D].
#: Tried in the sixth session and left out for the same reason (held-out coverage): a Vulkan
#: layer-split hop through host memory (layer_split_hop_s fitted 0.57 ms against CUDA's 0.15:
#: decode LOSO MAPE 14.8 -> 14.3 % but coverage 80.7 -> 76.5 %, the +3-10 % upper band edge left
#: VulkanForge's and Orion-zhen's faster rows outside) and a decode build-era term (x1.06 per
#: 1000 builds: LOSO 14.8 -> 15.2 %, coverage 78.3 %) [D].
#: Vulkan and ROCm fit decode attention's arithmetic (``decode_attention_sm_cycles_per_flop``, own
#: prior; seventh session: Vulkan decode by source 17.3 -> 14.6 %); CUDA and Metal keep 0.
DECODE_VULKAN = (
    *(n for n in DECODE_BACKEND if n != "active_expert_overhead_s"),
    "decode_attention_sm_cycles_per_flop",
)
#: Terms the backends beyond CUDA have and the CUDA fit lacks, with priors in their own files:
#: the per-expert decode cost (also Metal's: with it CUDA's held-out decode MAPE rose 10.2 ->
#: 10.4 %, so CUDA's fused MoE kernels keep none) and 16-bit experts' prompt calls (ROCm/Vulkan).
EXPERT_PRIORS = ("active_expert_overhead_s",)
OWN_PRIORS = (*EXPERT_PRIORS, "float_expert_call_s")
#: The current-era prompt fits add flash attention's K/V re-reads at depth (the May-2024 rows
#: ran without flash attention: the term is 0 there and stays at its prior); CUDA's also fits
#: the build era of its prompt kernels (eighth session: the August 2025 rows of
#: ggml-org/llama.cpp#15396 run slower than later builds on the same GPUs; the prior file says
#: by how much it moved the held-out figures). ROCm keeps 1 (see PREFILL_VULKAN): it takes the
#: term from its own prior, not from the CUDA fit.  Since the ninth session CUDA also fits the
#: SMs its routed-expert prompt matmuls keep busy (``moe_gemm_sm_limit``; ROCm and Vulkan keep 0).
PREFILL_CUDA_CURRENT = (
    *PREFILL_CUDA,
    "flash_kv_reads_per_query",
    "prefill_speedup_per_kilobuild",
    "moe_gemm_sm_limit",
    "moe_gemm_efficiency",
)
PREFILL_METAL_CURRENT = (*PREFILL_METAL, "flash_kv_reads_per_query")
DECODE_CURRENT = (
    *DECODE_CUDA,
    "memory_efficiency_unified",
    "sm_cycles_per_weight.iquant",
    "expert_overhead_per_layer_s",
)


@dataclass(frozen=True, slots=True)
class FitSpec:
    prior: priors.PriorProfile
    engine: str
    backend: str
    era: str
    decode: tuple[str, ...]
    prefill: tuple[str, ...]
    based_on: str | None = None  # start from (and centre the prior on) this fitted profile
    #: Parameters whose prior comes from the profile's own prior file, not the based_on fit
    #: (terms the based_on backend does not have).
    own_priors: tuple[str, ...] = ()


FITS = (
    FitSpec(priors.LLAMA_CPP_CUDA_2024, "llama.cpp", "cuda", dataset.ERA_2024, DECODE_CUDA, PREFILL_CUDA),
    FitSpec(priors.LLAMA_CPP_METAL_2024, "llama.cpp", "metal", dataset.ERA_2024, DECODE_METAL, PREFILL_METAL),
    FitSpec(priors.EXLLAMAV2, "exllamav2", "cuda", dataset.ERA_2024, DECODE_EXLLAMA, ()),
    FitSpec(priors.LLAMA_CPP_CUDA, "llama.cpp", "cuda", dataset.ERA_CURRENT, DECODE_CURRENT, PREFILL_CUDA_CURRENT),
    FitSpec(
        priors.LLAMA_CPP_ROCM,
        "llama.cpp",
        "rocm",
        dataset.ERA_CURRENT,
        (*DECODE_BACKEND, "decode_attention_sm_cycles_per_flop"),
        PREFILL_BACKEND,
        "llama.cpp-cuda",
        (
            *OWN_PRIORS,
            "prefill_speedup_per_kilobuild",
            "moe_gemm_sm_limit",
            "moe_gemm_efficiency",
            "launch_overhead_per_layer_s",
            "decode_attention_sm_cycles_per_flop",
        ),
    ),
    FitSpec(
        priors.LLAMA_CPP_VULKAN,
        "llama.cpp",
        "vulkan",
        dataset.ERA_CURRENT,
        DECODE_VULKAN,
        PREFILL_VULKAN,
        "llama.cpp-cuda",
        (
            "float_expert_call_s",
            "flash_kv_reads_per_query",
            "moe_gemm_sm_limit",
            "moe_gemm_efficiency",
            "decode_attention_sm_cycles_per_flop",
        ),
    ),
    FitSpec(
        priors.LLAMA_CPP_METAL,
        "llama.cpp",
        "metal",
        dataset.ERA_CURRENT,
        (*DECODE_METAL, "expert_overhead_per_layer_s", "active_expert_overhead_s"),
        PREFILL_METAL_CURRENT,
        "llama.cpp-metal-2024",
        (*EXPERT_PRIORS, "flash_kv_reads_per_query"),
    ),
)


def run(
    folder: Path, *, priors_only: bool = False, log: Callable[[str], None] = print, today: dt.date | None = None
) -> dict[str, FitResult]:
    """Fit (or write the priors of) every profile into ``folder``; a current-era profile with no
    rows is not written (its backend borrows another profile, and says so)."""
    folder.mkdir(parents=True, exist_ok=True)
    today = today or dt.date.today()
    fitted_names = {spec.prior.name for spec in FITS}
    results: dict[str, FitResult] = {}
    for prior in priors.PRIORS:
        if priors_only or prior.name not in fitted_names:
            write_profile(folder, profile_from(prior, prior.parameters))
    if priors_only:
        return results
    log("preparing rows …")
    prepared = prepare_all(log)
    for spec in FITS:
        rows = calibration_rows(spec.engine, spec.backend, prepared, spec.era)
        if not rows:
            (folder / f"{spec.prior.name}.toml").unlink(missing_ok=True)
            log(f"  {spec.prior.name}: no rows, not written")
            continue
        prior = spec.prior
        if spec.based_on in results:
            own = {n: prior.parameters.get(n) for n in spec.own_priors}
            base = results[spec.based_on].profile.parameters
            prior = dataclasses.replace(prior, parameters=base.with_values(own))
        result = fit_profile(prior, rows, spec.decode, spec.prefill, today=today, log=log)
        results[prior.name] = result
        write_profile(folder, result.profile, fit=fit_info(result, today), data=data_rows(result))
        s = result.profile
        log(f"  {s.name}: decode held-out MAPE {s.decode_spread.mape}, prefill {s.prefill_spread.mape}")
    return results


def respread(folder: Path) -> None:
    """Rewrite the spreads of every fitted profile in ``folder`` from its stored rows."""
    import tomllib

    from .load import read_profile

    for path in sorted(folder.glob("*.toml")):
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        data = doc.get("data")
        if not data:
            continue
        widen = 1.0 if any("held_out" in r for r in data) else SINGLE_GPU_SPREAD_WIDENING
        profile = spreads.with_spreads(read_profile(path), data, widen)
        write_profile(folder, profile, fit=doc.get("fit"), data=data)


def default_folder() -> Path:
    return Path(__file__).with_name("profiles")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rigplan.calibration.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--priors", action="store_true", help="write the prior profiles only")
    parser.add_argument("--out", type=Path, default=default_folder(), help="folder for the profile files")
    parser.add_argument(
        "--spreads-only",
        action="store_true",
        help="recompute the ranges of the profiles in --out from their stored held-out rows (no refit)",
    )
    args = parser.parse_args(argv)
    if args.spreads_only:
        respread(args.out)
    else:
        run(args.out, priors_only=args.priors)
    from .load import load_profiles

    load_profiles.cache_clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "FitResult",
    "Prepared",
    "calibration_rows",
    "fit_parameters",
    "fit_profile",
    "prepare",
    "prepare_all",
    "prepare_or_reason",
    "run",
]
