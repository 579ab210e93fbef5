"""The user's own calibration: read llama-bench / vllm bench results, fit, store, apply.

``rigplan calibrate FILE...`` parses llama-bench output (``-o json``, ``-o jsonl`` or the
default markdown table) and ``vllm bench serve --save-result`` JSON, compares every result with
rigplan's prediction for the same model, quant, rig and workload, and stores the geometric-mean
correction per engine and GPU type in the user config dir (platformdirs).  Later estimates on
the same engine and GPUs use it and say "calibrated on your results".

The store is one JSON file, rewritten atomically (a temporary file in the same folder, fsync,
``os.replace``) under an exclusive lock, so a crash or a second writer never leaves it half
written or loses the other writer's rows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import DataFileError
from .user_files import UserMeasurement, parse_file, quant_from_model_type
from .user_store import (
    SCHEMA,
    config_dir,
    engine_key,
    load_user_profile,
    locked,
    read_store,
    reset,
    row_key,
    show,
    store_path,
    stored_corrections,
    write_atomic,
)

#: Residual quantiles of the user's rows that bound their ranges (as the shipped profiles).
USER_QUANTILES = (0.10, 0.90)
#: Fewer rows than this: the range is ±(largest deviation, at least 5 %), not quantiles [D].
MIN_ROWS_FOR_QUANTILES = 5
MIN_USER_HALF_WIDTH = math.log(1.05)
# A user's result more than 5× off rigplan's estimate is a mislabelled file (wrong model, GPU or
# unit), not a calibration: the worst held-out residual of the shipped fit is about 2×.
MAX_USER_RATIO = 5.0


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    engine: str
    gpus: tuple[str, ...]
    decode_factor: float | None
    prefill_factor: float | None
    rows: list[dict[str, Any]]
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "gpus": list(self.gpus),
            "decode_factor": self.decode_factor,
            "prefill_factor": self.prefill_factor,
            "rows": self.rows,
            "store": self.path,
        }


def _predict(m: UserMeasurement) -> float:
    from ..estimate import estimate

    e = estimate(
        m.model,
        m.rig,
        quant=m.quant,
        engine=m.engine,
        prompt_tokens=m.prompt_tokens,
        output_tokens=m.output_tokens,
        batch=m.batch,
        split=m.split,
        gpu_layers=m.gpu_layers,
        use_user_calibration=False,
        force=True,
    )
    value = e.speed.decode_tokens_per_s if m.kind == "decode" else e.speed.prefill_tokens_per_s
    if value is None:
        raise DataFileError(m.file, m.kind, "rigplan has no prediction for this result")
    return value


def _factor_and_spread(logs: Sequence[float]) -> tuple[float | None, list[float] | None]:
    if not logs:
        return None, None
    mean = sum(logs) / len(logs)
    dev = sorted(x - mean for x in logs)
    if len(dev) >= MIN_ROWS_FOR_QUANTILES:
        lo = dev[int(USER_QUANTILES[0] * (len(dev) - 1))]
        hi = dev[math.ceil(USER_QUANTILES[1] * (len(dev) - 1))]
    else:
        lo, hi = dev[0], dev[-1]
    lo, hi = min(lo, -MIN_USER_HALF_WIDTH), max(hi, MIN_USER_HALF_WIDTH)
    return math.exp(mean), [round(lo, 5), round(hi, 5)]


#: Rows by (engine key, sorted GPU ids).
Groups = dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]]


def _measured_groups(measurements: Sequence[UserMeasurement]) -> Groups:
    """Each result with rigplan's prediction and the log ratio, grouped by engine and GPU set.

    Raises:
        DataFileError: a result implausibly far (over 5×) from the prediction.
    """
    from ..catalog import load_catalog
    from ..rig import parse_rig

    catalog = load_catalog()
    groups: Groups = {}
    for m in measurements:
        gpus = tuple(sorted({g.id for g in parse_rig(m.rig, catalog).gpus}))
        predicted = _predict(m)
        ratio = m.tokens_per_s / predicted
        if not 1 / MAX_USER_RATIO <= ratio <= MAX_USER_RATIO:
            raise DataFileError(
                m.file,
                m.kind,
                f"{m.tokens_per_s:.4g} tok/s is {ratio:.3g}× rigplan's {predicted:.4g} for {m.model} on {m.rig}: "
                "that is not a plausible measurement of this setup (check the model, quant and GPUs)",
            )
        row = {
            **asdict(m),
            "predicted": round(predicted, 4),
            "log_ratio": round(math.log(m.tokens_per_s / predicted), 6),
        }
        groups.setdefault((engine_key(m.engine), gpus), []).append(row)
    return groups


def _merged_entry(
    key: str, gpus: tuple[str, ...], rows: list[dict[str, Any]], old: dict[str, Any] | None, today: dt.date
) -> dict[str, Any]:
    """The store entry of one engine and GPU set: the old rows plus the new ones, refitted."""
    merged = list(old["rows"]) if old and isinstance(old.get("rows"), list) else []
    seen = {row_key(r) for r in merged}
    merged += [r for r in rows if row_key(r) not in seen]
    d_factor, d_spread = _factor_and_spread([r["log_ratio"] for r in merged if r.get("kind") == "decode"])
    p_factor, p_spread = _factor_and_spread([r["log_ratio"] for r in merged if r.get("kind") == "prefill"])
    return {
        "engine": key,
        "gpus": list(gpus),
        "decode_factor": d_factor,
        "prefill_factor": p_factor,
        "decode_spread": d_spread,
        "prefill_spread": p_spread,
        "rows": merged,
        "fitted_on": today.isoformat(),
    }


def calibrate(
    files: Sequence[Path | str],
    *,
    engine: str | None = None,
    gpu: str | None = None,
    model: str | None = None,
    today: dt.date | None = None,
) -> list[CalibrationResult]:
    """Parse ``files``, fit a correction per engine and GPU set, merge it into the store.

    Raises:
        DataFileError: a bad file (named with the field), or a corrupt store.
        RigplanError: names in the files rigplan does not know.
    """
    measurements = [m for f in files for m in parse_file(f, engine=engine, gpu=gpu, model=model)]
    if not measurements:
        raise DataFileError(", ".join(map(str, files)), "results", "no results to calibrate on")
    groups = _measured_groups(measurements)
    today = today or dt.date.today()
    path = store_path()
    results = []
    with locked(path.parent):
        doc = read_store(path)
        entries = [e for e in doc["entries"] if isinstance(e, dict)]
        for (key, gpus), rows in groups.items():
            old = next((e for e in entries if e.get("engine") == key and tuple(e.get("gpus", ())) == gpus), None)
            entry = _merged_entry(key, gpus, rows, old, today)
            entries = [e for e in entries if e is not old] + [entry]
            results.append(
                CalibrationResult(key, gpus, entry["decode_factor"], entry["prefill_factor"], entry["rows"], str(path))
            )
        write_atomic(path, {"schema": SCHEMA, "entries": entries})
    return results


__all__ = [
    "MAX_USER_RATIO",
    "CalibrationResult",
    "UserMeasurement",
    "calibrate",
    "config_dir",
    "engine_key",
    "load_user_profile",
    "parse_file",
    "quant_from_model_type",
    "reset",
    "show",
    "store_path",
    "stored_corrections",
]
