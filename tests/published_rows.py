"""One calibration row and the shipped profile's prediction for it: for the tests that pin a
published figure (a row's ref, "llamacpp_current.csv:434", names it in the project's data)."""

from __future__ import annotations

from rigplan.calibration import dataset
from rigplan.calibration.dataset import Measurement
from rigplan.calibration.fit_rows import prepare_or_reason
from rigplan.calibration.load import load_profiles


def shipped_prediction(ref: str, profile: str) -> tuple[Measurement, float]:
    """(the row, what ``profile`` as shipped predicts for it); fails the test if the row cannot be
    prepared (unknown model or GPU, layout that does not fit)."""
    m = next(m for m in dataset.measurements() if m.ref == ref)
    p = prepare_or_reason(m)
    assert not isinstance(p, str), p
    return m, p.predict(load_profiles()[profile])
