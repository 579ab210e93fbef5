"""The leave-one-GPU-out accuracy report meets issue 3's targets (calibration/accuracy.py)."""

from __future__ import annotations

import functools

import pytest

from rigplan.calibration import accuracy
from rigplan.catalog import load_catalog


@functools.cache
def report():
    return accuracy.accuracy_report()


def group(profile, kind, scope="targeted"):
    return next(g for g in report().groups if g.profile == profile and g.kind == kind and g.scope == scope)


@pytest.mark.parametrize(
    ("kind", "mape", "coverage"),
    [
        ("decode", accuracy.DECODE_MAPE_TARGET, accuracy.COVERAGE_TARGET),
        ("prefill", accuracy.PREFILL_MAPE_TARGET, accuracy.COVERAGE_TARGET),
    ],
)
def test_llama_cpp_cuda_meets_targets_on_held_out_gpus(kind, mape, coverage):
    g = group("llama.cpp-cuda-2024", kind)
    assert g.rows >= 100
    assert g.mape <= mape
    assert g.coverage >= coverage
    assert g.meets


def test_model_beats_the_naive_roofline():
    for kind in ("decode", "prefill"):
        g = group("llama.cpp-cuda-2024", kind)
        assert g.mape < g.roofline_mape / 2


def test_fit_verdicts_agree_with_out_of_memory_runs():
    r = report()
    assert r.fits_runs > 400
    assert r.fits_agreement >= accuracy.FITS_AGREEMENT_TARGET


def test_hardware_alone_of_its_kind_is_reported_not_targeted():
    scopes = {(g.profile, g.scope) for g in report().groups}
    assert ("llama.cpp-cuda-2024", "reported: only HBM part") in scopes
    assert ("llama.cpp-cuda-2024", "reported: only pascal card") in scopes
    assert any(p == "llama.cpp-metal-2024" for p, _ in scopes)
    gpus = load_catalog().gpus
    data = [gpus[g] for g in ("rtx-3090", "rtx-4090", "rtx-a6000", "h100-pcie", "tesla-p40")]
    assert accuracy.alone_of_kind(gpus["rtx-4090"], data) is None
    assert accuracy.alone_of_kind(gpus["rtx-a6000"], data) is None
    assert accuracy.alone_of_kind(gpus["h100-pcie"], data) == "only HBM part"


def test_report_renders_and_serialises():
    text = accuracy.format_report(report())
    assert "targeted" in text and "roofline" in text and "worst" in text
    d = report().to_dict()
    assert d["fits_agreement"]["rate"] >= accuracy.FITS_AGREEMENT_TARGET
    assert len(d["worst_rows"]) == accuracy.WORST_ROWS


def test_breakdown_reports_both_held_out_methods_by_era_backend_model_and_family():
    from rigplan.calibration.breakdown import breakdown, held_out_rows

    lines = breakdown(held_out_rows())
    keys = {(ln.era, ln.method, ln.by) for ln in lines}
    for by in ("all", "backend", "model", "GPU family"):
        assert ("current", "leave-one-source-out", by) in keys
        assert ("current", "leave-one-GPU-out", by) in keys
        assert ("2024", "leave-one-GPU-out", by) in keys
    targeted = [ln for ln in lines if ln.target]
    assert {(ln.era, ln.method) for ln in targeted} == set(accuracy_targets())
    may = {ln.kind: ln for ln in targeted if ln.era == "2024"}
    assert may["decode"].meets  # May-2024 LOGO decode ≤ 8 %
    # Prefill's target (≤ 15 %) is missed by a hair (15.2 %: the P40's 2–3-bit k-quant prompts);
    # this guards against it getting worse, the docs say it is not met.
    assert may["prefill"].mape <= 0.155 and may["prefill"].coverage >= 0.80


def accuracy_targets():
    from rigplan.calibration.breakdown import TARGETS

    return TARGETS.keys()
