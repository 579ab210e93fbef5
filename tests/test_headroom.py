"""rigplan.headroom.advise: the advice is computed through the estimating function it is given
(the edge passes rigplan.estimate), so the module itself never reaches the edge."""

from __future__ import annotations

from typing import Any

from rigplan.errors import UnsupportedError
from rigplan.estimate import estimate, fit_advice
from rigplan.headroom import DEFAULT_MARGIN, advise, within_margin

TIGHT = {"model": "llama-3.1-70b", "rig": "2x rtx-3090", "quant": "q5_k_m", "context": 8192}


def _tight():
    e = estimate(TIGHT["model"], TIGHT["rig"], quant=TIGHT["quant"], context=TIGHT["context"])
    assert not within_margin(e, DEFAULT_MARGIN)
    return e


def test_every_change_goes_through_the_given_function_without_user_calibration():
    calls: list[dict[str, Any]] = []

    def run(model: Any, rig: Any, **kwargs: Any):
        calls.append(kwargs)
        return estimate(model, rig, **kwargs)

    e = _tight()
    assert [a.text() for a in advise(e, run)] == [a.text() for a in fit_advice(e)]
    assert calls and all(c["use_user_calibration"] is False for c in calls)
    assert all(c["prompt_tokens"] <= c["context"] // 2 for c in calls)


def test_changes_the_function_refuses_are_not_advised():
    def refuse(model: Any, rig: Any, **kwargs: Any):
        raise UnsupportedError("refused")

    assert advise(_tight(), refuse) == []


def test_a_rig_that_fits_needs_no_advice_and_no_estimate():
    def never(model: Any, rig: Any, **kwargs: Any):
        raise AssertionError("no estimate needed")

    assert advise(estimate("llama-3-8b", "rtx-4090"), never) == []
