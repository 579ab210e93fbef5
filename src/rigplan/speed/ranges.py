"""Ranges around a speed: the spread of leave-one-GPU-out residuals, widened off the data.

A profile stores the 10th and 90th percentiles of log(measured / predicted) under
leave-one-GPU-out cross-validation.  The range is the point estimate times those quantiles'
exponentials, always containing the point.  Each way an estimate leaves the calibration data
(hardware kind not in the rows, a split or offload not measured, batches > 1 on a profile
fitted at batch 1) multiplies the log-width, so the range says how far the estimate travels.
"""

from __future__ import annotations

import math

from .profile import Spread

#: Widening of the log-range per way the estimate leaves the calibrated conditions [D].
OFF_DATA_WIDENING = 1.35
#: At most this many widenings apply (the range stays informative).
MAX_WIDENINGS = 3
#: The narrowest a range gets: ±3 % (run-to-run spread of llama-bench is ≈1 %; builds, drivers
#: and clocks add more) [D].
MIN_LOG_HALF_WIDTH = math.log(1.03)


def speed_range(point: float, spread: Spread, widen: float = 1.0) -> tuple[float, float]:
    """(low, high) around ``point`` from the residual quantiles, widened by ``widen``.

    >>> [round(x, 2) for x in speed_range(100.0, Spread(-0.1, 0.05))]
    [90.48, 105.13]
    """
    low = min(spread.low, -MIN_LOG_HALF_WIDTH) * widen
    high = max(spread.high, MIN_LOG_HALF_WIDTH) * widen
    return point * math.exp(low), point * math.exp(high)


def widening(reasons: list[str], hardware_factor: float) -> float:
    """The log-range multiplier: the hardware case's factor times OFF_DATA_WIDENING per other
    reason (at most MAX_WIDENINGS of them)."""
    others = [r for r in reasons if not r.startswith(("hardware", "backend"))]
    return hardware_factor * OFF_DATA_WIDENING ** min(len(others), MAX_WIDENINGS)
