"""Power limits: how much decode, prefill and training slow at a cap, from published sweeps
(perf-model.md §8.2), and the cap rigplan suggests.

>>> suggested_cap_fraction()
0.7
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

# ---------------------------------------------------------------------------------------------
# Power limits (perf-model.md §8.2): published sweeps as (watts, result) with the card's maximum
# ---------------------------------------------------------------------------------------------

#: (max watts, ((watts, value), ...)) — value is tok/s or a relative score; curves are normalised
#: to their value at max watts.
DECODE_POWER_SWEEPS: dict[str, tuple[float, tuple[tuple[float, float], ...]]] = {
    # RTX 3090 single-stream decode, relative tok/s [S:PWR-JANKY]
    "PWR-JANKY": (350, ((350, 103), (300, 101), (280, 99), (250, 97), (225, 91), (200, 83), (175, 64), (150, 42))),
    # 6× RTX 3090, llama.cpp MiniMax Q2 decode at 4k, tok/s [S:PWR-LLMGARAGE]
    "PWR-LLMGARAGE": (350, ((350, 72.6), (300, 72.1), (250, 70.7), (200, 68.3), (150, 62.6), (100, 12.1))),
    # RTX 3090, llama.cpp Qwen 27B decode: 280 W loses < 1 % [S:PWR-JEANF]
    "PWR-JEANF": (350, ((350, 100.0), (280, 99.0))),
}
PREFILL_POWER_SWEEPS: dict[str, tuple[float, tuple[tuple[float, float], ...]]] = {
    # 6× RTX 3090, llama.cpp prefill at 198k, tok/s [S:PWR-LLMGARAGE]
    "PWR-LLMGARAGE": (350, ((350, 9893), (300, 9326), (250, 8436), (200, 5941), (150, 2549))),
}
TRAINING_POWER_SWEEPS: dict[str, tuple[float, tuple[tuple[float, float], ...]]] = {
    # RTX 3090 ViT training (TF32): share of the 480 W result [S:PWR-QWERTY]
    "PWR-QWERTY": (480, ((480, 1.0), (320, 0.95), (280, 0.90), (230, 0.80))),
    # 4× RTX 3090 TensorFlow training: 280 W of 350 W keeps > 95 % [S:PWR-PUGET]
    "PWR-PUGET": (350, ((350, 1.0), (280, 0.95))),
}
#: The suggested cap is the lowest share of board power (in 5 % steps, not below half) at which
#: batch-1 decode keeps 95 % of its speed.
POWER_LIMIT_MAX_DECODE_LOSS = 0.05
POWER_LIMIT_STEP = 0.05
POWER_LIMIT_FLOOR = 0.5


def interpolate(points: Sequence[tuple[float, float]], x: float) -> float | None:
    """Linear interpolation in (x, y) points; None outside their range."""
    pts = sorted(points)
    if not pts[0][0] <= x <= pts[-1][0]:
        return None
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[-1][1]


def _sweep_mean(fraction: float, sweeps: dict[str, tuple[float, tuple[tuple[float, float], ...]]]) -> float:
    """Mean of the sweeps that cover ``fraction``, each normalised to its value at full power."""
    values = []
    for max_w, points in sweeps.values():
        top = interpolate(points, max_w)
        value = interpolate([(w / max_w, v / top) for w, v in points], fraction) if top else None
        if value is not None:
            values.append(value)
    if not values:  # below every sweep: assume speed proportional to power
        return fraction
    return sum(values) / len(values)


#: Grid on which the mean of the sweeps is made monotone (sweeps cover different ranges, so
#: their mean can step up where one sweep ends).
POWER_LIMIT_GRID = 0.01


def power_limit_factor(fraction: float, sweeps: dict[str, tuple[float, tuple[tuple[float, float], ...]]]) -> float:
    """Speed at ``fraction`` of board power relative to full power: the mean of the published
    sweeps that cover it, never above its value at any higher fraction (1.0 at full power).

    >>> round(power_limit_factor(0.7, DECODE_POWER_SWEEPS), 2)
    0.95
    """
    if fraction >= 1.0:
        return 1.0
    steps = int((1.0 - fraction) / POWER_LIMIT_GRID)
    return min(_sweep_mean(min(1.0, fraction + i * POWER_LIMIT_GRID), sweeps) for i in range(steps + 1))


@functools.cache
def suggested_cap_fraction() -> float:
    """The lowest share of board power (5 % steps, not below half) at which batch-1 decode keeps
    95 % of its speed in the published sweeps.

    >>> suggested_cap_fraction()
    0.7
    """
    fraction = 1.0
    steps = round((1.0 - POWER_LIMIT_FLOOR) / POWER_LIMIT_STEP)
    for i in range(1, steps + 1):
        f = round(1.0 - i * POWER_LIMIT_STEP, 4)
        if power_limit_factor(f, DECODE_POWER_SWEEPS) < 1.0 - POWER_LIMIT_MAX_DECODE_LOSS:
            break
        fraction = f
    return fraction


@functools.cache
def cap_factors(fraction: float) -> tuple[float, float, float]:
    """(decode, prefill, training) speed factors at ``fraction`` of board power."""
    return (
        power_limit_factor(fraction, DECODE_POWER_SWEEPS),
        power_limit_factor(fraction, PREFILL_POWER_SWEEPS),
        power_limit_factor(fraction, TRAINING_POWER_SWEEPS),
    )
