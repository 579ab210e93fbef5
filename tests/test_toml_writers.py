"""Every fitted profile is written by the one TOML writer (calibration.tomlwrite) and reads back
as the shipped file: the writers of the power curves, the training profile and the framework
profiles are checked on today's shipped data (so a refit writes what the loaders read)."""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from importlib import resources
from typing import Any

import pytest

from rigplan.calibration import power_curve, tomlwrite
from rigplan.training import fit, validate
from rigplan.training.profile import load_profile


def _shipped(package: str, name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))


def _close(a: Any, b: Any) -> bool:
    """Equal, floats to the writer's six significant digits."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9)
    return bool(a == b)


def test_nested_tables_inside_table_arrays_read_back():
    doc = {
        "gpu": [{"index": 0, "tflops": {"fp16": 1.5}}, {"index": 1, "tflops": {"fp8": 3.0}}],
        "when": dt.date(2026, 1, 2),
    }
    assert tomllib.loads(tomlwrite.dumps(doc, "header")) == doc


def test_none_is_refused_not_written_as_text():
    with pytest.raises(TypeError):
        tomlwrite.dumps({"a": None})


def test_power_curves_rewrite_the_shipped_file(tmp_path):
    path = tmp_path / "power_limit.toml"
    power_curve.write_curves(power_curve.load_power_curves(), path, dt.date(2026, 12, 6))
    assert tomllib.loads(path.read_text(encoding="utf-8")) == _shipped("rigplan.calibration", power_curve.CURVE_FILE)


def test_framework_profiles_rewrite_the_shipped_file():
    shipped = _shipped("rigplan.training", "profiles/frameworks.toml")
    text = validate.profiles_toml(shipped["framework"], shipped["accuracy"])
    assert tomllib.loads(text) == shipped


def test_training_profile_rewrites_the_shipped_file():
    shipped = _shipped("rigplan.training", "profiles/training.toml")
    rows = fit.load_profile_rows()
    hopper = fit.hopper_rows_from_csv(fit.packaged_hopper_csv(), rows)
    text = fit.profile_toml(load_profile(), rows, shipped["loo_mape_by_size"], hopper)
    assert _close(tomllib.loads(text), shipped)
