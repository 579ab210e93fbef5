"""The published measurements mapped to catalogue ids (calibration/dataset.py)."""

from __future__ import annotations

import pytest

from rigplan.calibration import dataset
from rigplan.catalog import load_catalog


def test_every_llama_cpp_row_maps_to_catalogue_gpu_and_model():
    rows = [m for m in dataset.measurements() if m.ref.startswith(dataset.LLAMACPP_FILE)]
    # llamacpp_multi_gpu.csv has 545 rows; all of them map.
    assert len(rows) == 545
    cat = load_catalog()
    assert {m.gpu for m in rows} <= set(cat.gpus)
    assert {m.model for m in rows} <= set(cat.models)
    # The calibration README: Dec-2023 rows are LEGACY; the overview table marks OOM runs.
    assert sum(m.legacy for m in rows) == 144
    assert sum(m.oom for m in rows) == 46


def test_exllamav2_rows_map_formats():
    ex = [m for m in dataset.measurements() if m.engine == "exllamav2"]
    assert ex and {m.quant for m in ex} >= {"int4", "exl2-4.0", "exl2-2.5"}
    assert {m.gpu for m in ex} == {"rtx-3090-ti", "rtx-4090"}


def test_the_sources_own_outlier_is_excluded():
    flagged = [
        m
        for m in dataset.measurements()
        if m.engine == "llama.cpp" and m.gpu == "rtx-4090" and m.ref.startswith(dataset.ENGINES_FILE)
    ]
    assert flagged and all(m.legacy for m in flagged)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Llama-3-8B", "llama-3-8b"),
        ('LLaMA-7B class ("llama 7B" in llama-bench; exact checkpoint not stated)', "llama-2-7b"),
        ('CodeLlama-7B (llama-bench "llama 7B"; Llama-2-7B architecture)', "llama-2-7b"),
        ("Llama-2-13B-chat", "llama-2-13b"),
        ("TinyLlama-1.1B", "tinyllama-1.1b"),
        ("Mystery-9B", None),
    ],
)
def test_model_names(name, key):
    assert dataset.model_key(name) == key


def test_extra_models_estimate():
    from rigplan.estimate import estimate

    for key in dataset.EXTRA_MODELS:
        m = next(x for x in dataset.measurements() if x.model == key)
        e = estimate(m.model_input(), m.rig, quant=m.quant, engine=m.engine, catalog=dataset.calibration_catalog())
        assert e.speed.decode_tokens_per_s
