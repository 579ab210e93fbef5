"""Fixtures for the planner, power and plan CLI tests.

``roofline_speed`` swaps the calibrated speed model for a tiny deterministic one, so tests of
ranking, speed constraints and explanations do not depend on the calibration data (which has its
own tests).  ``no_speed`` makes every speed unknown, as before a speed model exists.
"""

from __future__ import annotations

import sys

import pytest

from rigplan.speed import SpeedEstimate

#: Toy efficiency: decode reads every weight once per token at this share of peak bandwidth.
TOY_BANDWIDTH_SHARE = 0.6
#: Toy prefill rate per GPU (tokens/s), enough to give a first-token time.
TOY_PREFILL_TOKENS_PER_S = 1000.0
TOY_SPREAD = 0.15


def toy_speed(model, quant, engine, rig, memory, workload, link, **_: object) -> SpeedEstimate:
    """Decode = bandwidth ÷ weights (tensor parallel: all GPUs' bandwidth; layer split: the
    slowest GPU's, one at a time); throughput = decode × batch."""
    weights = max(memory.weights_bytes, 1)
    gpus = rig.all_gpus
    if memory.placement.split in ("tensor",):
        bandwidth = min(g.bandwidth_bytes_per_s for g in gpus) * len(gpus)
    else:
        bandwidth = min(g.bandwidth_bytes_per_s for g in gpus)
    decode = TOY_BANDWIDTH_SHARE * bandwidth / weights if workload.output_tokens else None
    prefill = TOY_PREFILL_TOKENS_PER_S * len(gpus) if workload.prompt_tokens else None
    return SpeedEstimate(
        decode_tokens_per_s=decode,
        decode_tokens_per_s_range=(decode * (1 - TOY_SPREAD), decode * (1 + TOY_SPREAD)) if decode else None,
        decode_throughput_tokens_per_s=decode * workload.batch if decode else None,
        prefill_tokens_per_s=prefill,
        prefill_tokens_per_s_range=(prefill * (1 - TOY_SPREAD), prefill * (1 + TOY_SPREAD)) if prefill else None,
        ttft_s=workload.prompt_tokens / prefill if prefill else None,
        engine_profile="toy roofline (tests)",
    )


def _no_speed(*_: object, **__: object) -> SpeedEstimate:
    return SpeedEstimate(None, None, None, None, None, None, engine_profile="none")


def _estimate_module():
    import rigplan.core  # noqa: F401  (the pure core calls the speed model)

    return sys.modules["rigplan.core"]


@pytest.fixture
def roofline_speed(monkeypatch):
    """Every estimate uses :func:`toy_speed`."""
    monkeypatch.setattr(_estimate_module(), "estimate_speed", toy_speed)
    return toy_speed


@pytest.fixture
def no_speed(monkeypatch):
    """Every estimate has unknown speeds."""
    monkeypatch.setattr(_estimate_module(), "estimate_speed", _no_speed)
    return _no_speed
