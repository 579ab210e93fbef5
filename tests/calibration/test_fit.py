"""The fitting machinery recovers known parameters (calibration/fit.py)."""

from __future__ import annotations

import dataclasses

import pytest

from rigplan.calibration import dataset, fit, priors


def test_fit_recovers_a_memory_efficiency():
    rows = [
        m
        for m in dataset.measurements()
        if m.gpu == "rtx-4090"
        and m.kind == "decode"
        and m.gpu_count == 1
        and m.ref.startswith(dataset.LLAMACPP_FILE)
        and not m.legacy
        and m.tokens_per_s
    ]
    prepared = [fit.prepare(m) for m in rows]
    # a flat prior, so that the rows alone decide
    prior = dataclasses.replace(priors.LLAMA_CPP_CUDA, prior_log_sd={"memory_efficiency_gddr": 100.0})
    truth = prior.parameters.with_values({"memory_efficiency_gddr": 0.6})
    synthetic = []
    for p in prepared:
        assert p is not None
        value = p.predict(fit.profile_from(prior, truth))
        synthetic.append(dataclasses.replace(p, m=dataclasses.replace(p.m, tokens_per_s=value)))
    got = fit.fit_parameters(synthetic, prior, prior.parameters, ["memory_efficiency_gddr"])
    assert got.memory_efficiency_gddr == pytest.approx(0.6, rel=0.02)


def test_efficiencies_stay_below_one():
    rows = [
        m
        for m in dataset.measurements()
        if m.gpu == "rtx-4090"
        and m.kind == "decode"
        and m.gpu_count == 1
        and m.ref.startswith(dataset.LLAMACPP_FILE)
        and not m.legacy
        and m.tokens_per_s
    ]
    prepared = [p for p in (fit.prepare(m) for m in rows) if p is not None]
    fast = [dataclasses.replace(p, m=dataclasses.replace(p.m, tokens_per_s=p.m.tokens_per_s * 3)) for p in prepared]
    got = fit.fit_parameters(fast, priors.LLAMA_CPP_CUDA, priors.LLAMA_CPP_CUDA.parameters, ["memory_efficiency_gddr"])
    assert got.memory_efficiency_gddr <= fit.MAX_EFFICIENCY


def test_priors_write_every_engine(tmp_path):
    fit.run(tmp_path, priors_only=True, log=lambda _m: None)
    names = sorted(p.stem for p in tmp_path.glob("*.toml"))
    assert names == sorted(p.name for p in priors.PRIORS)
