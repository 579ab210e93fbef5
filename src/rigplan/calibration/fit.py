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
from pathlib import Path
from typing import Any

import numpy as np

from ..speed.profile import EngineProfile, SpeedParameters, Spread
from . import priors, spreads
from .fit_doc import data_rows, fit_info, write_profile
from .fit_rows import FitResult, Prepared, calibration_rows, prepare, prepare_all, prepare_or_reason
from .fit_specs import FITS

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
