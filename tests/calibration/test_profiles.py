"""The shipped engine profiles (calibration/profiles/*.toml) and their loader."""

from __future__ import annotations

import random
import re
import tomllib

import pytest

from rigplan.calibration import fit
from rigplan.calibration.dataset import measurements
from rigplan.calibration.fit_specs import FITS
from rigplan.calibration.load import load_profiles, parse_profile, profile_rows
from rigplan.calibration.tomlwrite import dumps
from rigplan.catalog import load_catalog
from rigplan.engines import ENGINES
from rigplan.errors import DataFileError
from rigplan.rig import parse_rig
from rigplan.speed import select_profile


def test_every_engine_has_a_profile_and_llama_cpp_one_per_backend():
    profiles = load_profiles()
    cat = load_catalog()
    for engine in ENGINES.values():
        assert select_profile(profiles, engine, parse_rig("rtx-4090", cat)).backend == "cuda"
    assert select_profile(profiles, ENGINES["llama.cpp"], parse_rig("m2-ultra-192gb", cat)).name == "llama.cpp-metal"
    assert select_profile(profiles, ENGINES["ollama"], parse_rig("rtx-3090", cat)).name == "llama.cpp-cuda"


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("llama.cpp-cuda", r"^llama\.cpp-cuda@fit-\d{4}-\d\d-\d\d \(builds b\d+–b\d+, calibrated on \d+ rows\)$"),
        (
            "llama.cpp-cuda-2024",
            r"^llama\.cpp-cuda-2024@fit-\d{4}-\d\d-\d\d \(builds b2824–b2843, calibrated on \d+ rows\)$",
        ),
        ("exllamav2", r"^exllamav2@fit-\d{4}-\d\d-\d\d \(calibrated on \d+ rows\)$"),
        ("vllm", r"^vllm@prior \(no calibration rows; range -\d+%/\+35%\)$"),
        ("transformers", r"^transformers@prior \(no calibration rows; range"),
    ],
)
def test_labels_say_what_the_profile_rests_on(name, pattern):
    assert re.match(pattern, load_profiles()[name].label())


def test_profiles_are_sane():
    for p in load_profiles().values():
        params = p.parameters
        for eff in (
            params.memory_efficiency_gddr,
            params.memory_efficiency_hbm,
            params.memory_efficiency_unified,
            params.tensor_efficiency,
        ):
            assert 0.05 < eff <= fit.MAX_EFFICIENCY
        for spread in (p.decode_spread, p.prefill_spread):
            assert spread.low <= 0 <= spread.high


@pytest.mark.parametrize("name", ["llama.cpp-cuda-2024", "llama.cpp-cuda"])
def test_fitted_profiles_keep_their_rows_with_held_out_predictions(name):
    rows = profile_rows(name)
    assert len(rows) == load_profiles()[name].rows
    assert all(("held_out" in r or "held_out_source" in r) and r["measured"] > 0 for r in rows)
    refs = {m.ref for m in measurements() if not m.legacy}
    assert {r["ref"] for r in rows} <= refs


@pytest.mark.parametrize("name", [spec.prior.name for spec in FITS])
def test_stored_predictions_match_the_current_code(name):
    """A profile written by an older version of the model, or one that lost a fact the fit
    priced with, would silently mis-predict: the stored in-sample predictions must be what the
    shipped profile gives today (rerun fit.py if not)."""
    stored = {r["ref"]: r for r in profile_rows(name)}
    by_ref = {m.ref: m for m in measurements()}
    profile = load_profiles()[name]
    for ref in random.Random(7).sample(sorted(stored), min(25, len(stored))):
        prepared = fit.prepare(by_ref[ref])
        assert prepared is not None
        assert prepared.predict(profile) == pytest.approx(stored[ref]["fitted"], rel=0.005), ref


GOOD = {
    "name": "x",
    "version": "prior",
    "engines": ["vllm"],
    "backend": "cuda",
    "parameters": {"memory_efficiency_hbm": 0.7, "sm_cycles_per_weight": {"int4": 0.1}},
    "spread": {"decode": {"low": -0.2, "high": 0.2}, "prefill": {"low": -0.3, "high": 0.3}},
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"parameters": {"memory_efficency_hbm": 0.7}}, "parameters.memory_efficency_hbm", id="typo"),
        pytest.param(
            {"parameters": {"sm_cycles_per_weight": {"q9": 1.0}}},
            "parameters.sm_cycles_per_weight.q9",
            id="weight-class",
        ),
        pytest.param({"parameters": {"tensor_efficiency": "high"}}, "parameters.tensor_efficiency", id="type"),
        pytest.param({"parameters": {"tensor_efficiency": -1}}, "parameters.tensor_efficiency", id="negative"),
        pytest.param(
            {"spread": {"decode": {"low": 0.1, "high": 0.2}, "prefill": {"low": -0.1, "high": 0.1}}},
            "spread.decode",
            id="spread-excludes-point",
        ),
        pytest.param({"engines": "vllm"}, "engines", id="engines-not-list"),
        pytest.param({"colour": "blue"}, "colour", id="unknown-key"),
        pytest.param({"behaviour": {"flash_attention": "yes"}}, "behaviour.flash_attention", id="behaviour-type"),
    ],
)
def test_bad_profiles_name_file_and_field(change, field):
    with pytest.raises(DataFileError, match=re.escape(f"p.toml: {field}")):
        parse_profile("p.toml", {**GOOD, **change})


def test_toml_writer_round_trips():
    doc = {
        "a": 1,
        "b": 0.5,
        "c": 'x"y',
        "d": [1, 2],
        "e": True,
        "t": {"u": 1e-6, "v": {"w": 3}},
        "rows": [{"k": 1, "s": "a"}, {"k": 2, "s": "b"}],
    }
    assert tomllib.loads(dumps(doc, "header")) == doc
