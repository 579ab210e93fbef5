"""Fit the serving profiles (``calibration/serving/<engine>.toml``) to the serving rows.

``python -m rigplan.calibration.serving_fit`` runs every row of
:mod:`rigplan.calibration.serving_data` through the real pipeline (``rigplan.estimate``), fits
a few parameters per engine — a maximum-a-posteriori fit in log space (Levenberg–Marquardt on
log(predicted / measured) plus Gaussian log-priors centred on :mod:`.serving_priors`) — then
leaves each source and each GPU out in turn; the held-out log residuals set the ranges.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..speed.batch import ServingParameters, ServingProfile, few_users
from ..speed.profile import Spread
from . import serving_data, tomlwrite
from .serving_priors import PRIOR_RANGE_LOG, SERVING_PRIORS, ServingPrior
from .spreads import COVERAGE_TARGET, WIDENINGS

#: Parameters the fit may move (the rest stay at their priors); each must be told by the rows.
FITTED = ("memory_efficiency_hbm", "moe_memory_efficiency", "kernel_floor_s", "tensor_efficiency")
#: Rows on several nodes are checked (tests/calibration), not fitted: their step carries the
#: network all-reduce, whose latency is a prior (speed.comm.NETWORK_LATENCY_S), and one such
#: source — SGLang TP 16 on 2x8 H100, 23 ms a token where the model says 10 — would otherwise
#: move the per-GPU parameters every single-node row shares (SGLang decode held out 27 % -> 97 %).
MAX_FIT_NODES = 1
#: Efficiencies cannot exceed this share of a peak.
MAX_EFFICIENCY = 0.95
#: Levenberg–Marquardt settings (finite-difference step in log space, iterations).
FD_STEP = 1e-3
MAX_ITERATIONS = 12
#: Quantiles of held-out log residuals that make the range (80 % inside).
LOW_QUANTILE, HIGH_QUANTILE = 0.10, 0.90
#: Fewest held-out residuals from which quantiles are taken; fewer keep the prior range.
MIN_SPREAD_ROWS = 5
#: The narrowest range a fit may claim (log): ±10 % — builds, flags and drivers move serving
#: results by that much between runs of one source [D].
MIN_RANGE_LOG = math.log(1.10)
HEADER = (
    "Serving profile for rigplan's batch model — written by `python -m rigplan.calibration.serving_fit`.\n"
    "Do not edit by hand: change serving_prior_profiles/*.toml or the fit and rerun it.\n"
)


def prior_profile(prior: ServingPrior) -> ServingProfile:
    spread = Spread(-PRIOR_RANGE_LOG, PRIOR_RANGE_LOG)
    return ServingProfile(
        name=prior.name,
        version="prior",
        engines=prior.engines,
        parameters=prior.parameters,
        behaviour=prior.behaviour,
        few_users_spread=spread,
        many_users_spread=spread,
        source=prior.source,
        notes=prior.notes,
    )


def with_parameters(profile: ServingProfile, values: dict[str, float]) -> ServingProfile:
    return dataclasses.replace(profile, parameters=dataclasses.replace(profile.parameters, **values))


def fit_parameters(
    rows: Sequence[serving_data.ServingRow],
    prior: ServingPrior,
    start: ServingProfile,
    predict: Callable[[serving_data.ServingRow, ServingProfile], float],
    names: Sequence[str] = FITTED,
) -> ServingProfile:
    """MAP fit of ``names`` on ``rows``; parameters the rows cannot tell stay near the prior."""
    if not rows:
        return start
    sds = dict(prior.prior_log_sd)
    x_prior = np.log([getattr(prior.parameters, n) for n in names])
    sd = np.array([sds.get(n, 0.5) for n in names])
    measured = np.log([r.measured for r in rows])

    def at(x: np.ndarray) -> ServingProfile:
        values = dict(zip(names, np.exp(x).tolist(), strict=True))
        for n in names:
            if "efficiency" in n:
                values[n] = min(values[n], MAX_EFFICIENCY)
        return with_parameters(start, values)

    def residuals(x: np.ndarray) -> np.ndarray:
        prof = at(x)
        pred = np.log([max(predict(r, prof), 1e-9) for r in rows])
        return np.concatenate([pred - measured, (x - x_prior) / sd])

    x = np.log([getattr(start.parameters, n) for n in names])
    r = residuals(x)
    cost, lam = float(r @ r), 1e-2
    for _ in range(MAX_ITERATIONS):
        jac = np.empty((len(r), len(x)))
        for j in range(len(x)):
            dx = np.zeros(len(x))
            dx[j] = FD_STEP
            jac[:, j] = (residuals(x + dx) - r) / FD_STEP
        a, g = jac.T @ jac, jac.T @ r
        improved = False
        while lam < 1e8:
            x_new = x - np.linalg.solve(a + lam * np.diag(np.diag(a) + 1e-9), g)
            r_new = residuals(x_new)
            c_new = float(r_new @ r_new)
            if c_new < cost:
                improved = cost - c_new > 1e-7 * max(cost, 1.0)
                x, r, cost, lam = x_new, r_new, c_new, max(lam / 3, 1e-7)
                break
            lam *= 4
        if not improved:
            break
    return at(x)


def _spread(logs: Sequence[float], held_out: Sequence[Sequence[float]] = ()) -> Spread:
    """10th–90th percentile of ``logs`` (each row's worse held-out log residual), widened (as
    little as :data:`~.spreads.WIDENINGS` allows) until every list in ``held_out`` with
    MIN_SPREAD_ROWS rows (residuals of one test held out by source, or by GPU) has
    :data:`~.spreads.COVERAGE_TARGET` of its rows inside: the pooled quantiles can leave one
    test (throughput at a concurrency beside 600 offline-maximum rows) short of the promise."""
    if len(logs) < MIN_SPREAD_ROWS:
        return Spread(-PRIOR_RANGE_LOG, PRIOR_RANGE_LOG, rows=len(logs))
    lo = min(float(np.quantile(logs, LOW_QUANTILE)), -MIN_RANGE_LOG)
    hi = max(float(np.quantile(logs, HIGH_QUANTILE)), MIN_RANGE_LOG)

    def holds(w: float) -> bool:
        return all(
            sum(lo * w <= x <= hi * w for x in xs) >= COVERAGE_TARGET * len(xs)
            for xs in held_out
            if len(xs) >= MIN_SPREAD_ROWS
        )

    widen = next((w for w in WIDENINGS if holds(w)), WIDENINGS[-1])
    mape = float(np.mean([abs(math.exp(-v) - 1) for v in logs]))
    return Spread(lo * widen, hi * widen, round(mape, 4), len(logs))


def held_out(
    rows: Sequence[serving_data.ServingRow],
    prior: ServingPrior,
    start: ServingProfile,
    key: Callable[[serving_data.ServingRow], str],
) -> dict[str, float]:
    """Prediction of every row by a fit without its group (source or GPU)."""
    out: dict[str, float] = {}
    for group in sorted({key(r) for r in rows}):
        train = [r for r in rows if key(r) != group]
        prof = fit_parameters(train, prior, start, serving_data.predict) if train else start
        for r in rows:
            if key(r) == group:
                out[r.ref] = serving_data.predict(r, prof)
    return out


def profile_doc(profile: ServingProfile, data: list[dict[str, Any]]) -> dict[str, Any]:
    p, b = profile.parameters, profile.behaviour
    spreads = {}
    for kind, s in (("few_users", profile.few_users_spread), ("many_users", profile.many_users_spread)):
        spreads[kind] = {
            k: v for k, v in (("low", s.low), ("high", s.high), ("mape", s.mape), ("rows", s.rows)) if v is not None
        }
    doc: dict[str, Any] = {
        "name": profile.name,
        "version": profile.version,
        "engines": list(profile.engines),
        "rows": profile.rows,
        "calibrated_kinds": list(profile.calibrated_kinds),
        "source": profile.source,
        "notes": profile.notes,
        "parameters": {n: float(getattr(p, n)) for n in ServingParameters.names()},
        "behaviour": {n: getattr(b, n) for n in b.__dataclass_fields__},
        "spread": spreads,
    }
    if data:
        doc["data"] = data
    return doc


def fit_engine(prior: ServingPrior, log: Callable[[str], None]) -> tuple[ServingProfile, list[dict[str, Any]]]:
    """The fitted profile of one engine and its data rows (with fitted and held-out predictions)."""
    start = prior_profile(prior)
    rows = [r for r in serving_data.rows() if r.fit_engine in prior.engines and r.nodes <= MAX_FIT_NODES]
    if not rows:
        log(f"{prior.name}: no rows, prior kept")
        return start, []
    fitted = fit_parameters(rows, prior, start, serving_data.predict)
    by_source = held_out(rows, prior, start, lambda r: r.source_key)
    by_gpu = held_out(rows, prior, start, lambda r: r.gpu)
    logs = {kind: [] for kind in ("few_users", "many_users")}  # type: dict[str, list[float]]
    # held-out residuals per band, by test (decode, throughput at a concurrency, offline
    # maximum) and by what was held out
    held = {kind: {} for kind in logs}  # type: dict[str, dict[tuple[str, str], list[float]]]
    data = []
    for r in rows:
        kind = "few_users" if few_users(r.concurrency) else "many_users"
        worst = max((by_source[r.ref], by_gpu[r.ref]), key=lambda v: abs(math.log(v / r.measured)))
        logs[kind].append(math.log(r.measured / worst))
        test = "decode" if r.metric == serving_data.DECODE else "max" if r.concurrency == "max" else "at a concurrency"
        for out, predicted in (("source", by_source[r.ref]), ("gpu", by_gpu[r.ref])):
            held[kind].setdefault((test, out), []).append(math.log(r.measured / predicted))
        data.append(
            {
                **r.doc(),
                "fitted": round(serving_data.predict(r, fitted), 3),
                "held_out_source": round(by_source[r.ref], 3),
                "held_out_gpu": round(by_gpu[r.ref], 3),
            }
        )

    def spread_rows(kind: str, fallback: str) -> tuple[list[float], list[list[float]]]:
        k = kind if logs[kind] else fallback  # a kind without rows borrows the other's spread
        return logs[k], list(held[k].values())

    kinds = sorted({serving_data.kind_of(r) for r in rows} | ({"moe"} if any(r.moe for r in rows) else set()))
    profile = dataclasses.replace(
        fitted,
        version=f"fit-{dt.date.today().isoformat()}",
        rows=len(rows),
        calibrated_kinds=tuple(kinds),
        few_users_spread=_spread(*spread_rows("few_users", "many_users")),
        many_users_spread=_spread(*spread_rows("many_users", "few_users")),
    )
    log(f"{prior.name}: {len(rows)} rows, {profile.parameters}")
    return profile, data


def default_folder() -> Path:
    return Path(__file__).parent / "serving"


def run(folder: Path | None = None, log: Callable[[str], None] = print) -> list[Path]:
    """Fit every engine and write its profile; returns the files written."""
    folder = folder or default_folder()
    folder.mkdir(parents=True, exist_ok=True)
    from .serving_load import load_serving_profiles

    for prior in SERVING_PRIORS:  # the rows' batch sizes need the engines' scheduler defaults
        path = folder / f"{prior.engines[0]}.toml"
        if not path.exists():
            path.write_text(tomlwrite.dumps(profile_doc(prior_profile(prior), []), HEADER), encoding="utf-8")
    load_serving_profiles.cache_clear()
    out = []
    for prior in SERVING_PRIORS:
        profile, data = fit_engine(prior, log)
        path = folder / f"{prior.engines[0]}.toml"
        path.write_text(tomlwrite.dumps(profile_doc(profile, data), HEADER), encoding="utf-8")
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="folder for the profiles (default: the package's)")
    args = parser.parse_args(argv)
    for path in run(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
