"""Speed under a GPU power limit, fitted to the published sweeps in ``power_limit_sweeps.csv``.

    python -m rigplan.calibration.power_curve     # refit and write power_limit.toml

Each sweep (one source, GPU, engine, test and model) is normalised to its value at its highest
limit; the share ``f`` of that limit keeps ``r(f) = smoothmin(1, f / knee)`` of the speed:
``r(f) = ((1 + knee^k) / (1 + (knee / f)^k))^(1/k)`` (1 at f = 1), with a knee and a sharpness
``k`` per phase (decode, prefill) fitted by least squares on log(r).  Decode is bandwidth-bound
and barely slows until the clocks fall below what the memory needs (a low knee); prefill is
compute-bound and slows with the clock (a knee near 1).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import math
import sys
import tomllib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import DataFileError
from . import tomlwrite

SWEEPS_FILE = "power_limit_sweeps.csv"
CURVE_FILE = "power_limit.toml"
#: Grids searched for the knee (share of the top limit) and the sharpness.
KNEE_GRID = tuple(0.30 + 0.01 * i for i in range(71))
SHARPNESS_GRID = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)


@dataclass(frozen=True, slots=True)
class PowerCurve:
    """Retention of speed at a share of the top power limit, for one phase."""

    phase: str  # "decode" | "prefill"
    knee: float
    sharpness: float
    rows: int
    sweeps: int
    mape: float

    def retention(self, fraction: float) -> float:
        """Share of full-power speed kept at ``fraction`` of the top limit (1 at or above it)."""
        if fraction >= 1.0:
            return 1.0
        k, knee = self.sharpness, self.knee
        return float(((1 + knee**k) / (1 + (knee / max(fraction, 1e-3)) ** k)) ** (1 / k))


def _series(rows: Sequence[dict[str, str]]) -> list[tuple[str, list[tuple[float, float]]]]:
    """Split the rows into sweeps: by source, GPU, engine and test; several models measured at
    the same limits are told apart by rank (the k-th value at each limit is series k)."""
    groups: dict[tuple[str, str, str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        key = (r["source_id"], r["gpu"], r["engine"], r["test"])
        groups[key][float(r["power_limit_w"])].append(float(r["tokens_per_s"]))
    out = []
    for key, by_watt in groups.items():
        width = max(len(v) for v in by_watt.values())
        for k in range(width):
            pts = [(w, sorted(v)[k]) for w, v in by_watt.items() if len(v) == width]
            if len(pts) >= 3:
                out.append(("decode" if key[3].startswith("decode") else "prefill", sorted(pts)))
    return out


def _normalised(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    top_w, top_v = points[-1]
    return [(w / top_w, v / top_v) for w, v in points if w < top_w]


def fit_curve(phase: str, sweeps: Sequence[list[tuple[float, float]]]) -> PowerCurve:
    """Grid least squares of log retention over every point of ``phase``'s sweeps."""
    pts = [p for s in sweeps for p in _normalised(s)]
    best: tuple[float, float, float] = (math.inf, KNEE_GRID[0], SHARPNESS_GRID[0])
    for knee in KNEE_GRID:
        for k in SHARPNESS_GRID:
            curve = PowerCurve(phase, knee, k, 0, 0, 0.0)
            cost = sum(math.log(curve.retention(f) / r) ** 2 for f, r in pts)
            if cost < best[0]:
                best = (cost, knee, k)
    _, knee, k = best
    curve = PowerCurve(phase, knee, k, len(pts), len(sweeps), 0.0)
    mape = sum(abs(curve.retention(f) - r) / r for f, r in pts) / max(len(pts), 1)
    return PowerCurve(phase, round(knee, 3), k, len(pts), len(sweeps), round(mape, 4))


def fit_all() -> dict[str, PowerCurve]:
    text = resources.files("rigplan.calibration").joinpath("measurements", SWEEPS_FILE).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    by_phase: dict[str, list[list[tuple[float, float]]]] = defaultdict(list)
    for phase, pts in _series(rows):
        by_phase[phase].append(pts)
    return {phase: fit_curve(phase, s) for phase, s in sorted(by_phase.items())}


def write_curves(curves: dict[str, PowerCurve], path: Path, today: dt.date) -> None:
    header = (
        "Speed under a power limit — written by `python -m rigplan.calibration.power_curve`.\n"
        f"Fitted {today.isoformat()} on calibration/measurements/{SWEEPS_FILE} (sources in its rows)."
    )
    doc = {
        c.phase: {"knee": c.knee, "sharpness": c.sharpness, "rows": c.rows, "sweeps": c.sweeps, "mape": c.mape}
        for c in curves.values()
    }
    path.write_text(tomlwrite.dumps(doc, header), encoding="utf-8")


@functools.cache
def load_power_curves() -> dict[str, PowerCurve]:
    """The shipped curves by phase ("decode", "prefill")."""
    text = resources.files("rigplan.calibration").joinpath(CURVE_FILE).read_text(encoding="utf-8")
    doc = tomllib.loads(text)
    out = {}
    for phase, t in doc.items():
        try:
            out[phase] = PowerCurve(
                phase, float(t["knee"]), float(t["sharpness"]), int(t["rows"]), int(t["sweeps"]), float(t["mape"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFileError(CURVE_FILE, phase, f"expected knee, sharpness, rows, sweeps, mape ({exc})") from None
    return out


def main() -> int:
    curves = fit_all()
    write_curves(curves, Path(__file__).with_name(CURVE_FILE), dt.date.today())
    for c in curves.values():
        print(f"{c.phase}: knee {c.knee}, sharpness {c.sharpness}, {c.rows} points / {c.sweeps} sweeps, MAPE {c.mape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
