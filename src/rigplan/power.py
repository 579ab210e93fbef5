"""Power: board power, estimated draw in a workload, and the PSU for the whole machine."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .memory import MemoryEstimate
from .rig import Rig

# Standard ATX PSU sizes in watts.
PSU_SIZES_W = (550, 650, 750, 850, 1000, 1200, 1300, 1600, 2000, 2400, 2800)
# CPU and the rest of the platform (board, RAM, drives, fans): perf-model.md §8.3
# ("300 W GPU + 300 W CPU + 150 W rest").
DEFAULT_CPU_W = 250
DEFAULT_PLATFORM_W = 150
# Sustained load should stay within 80 % of the PSU rating (perf-model.md §8.3, u = 0.8).
PSU_SUSTAINED_SHARE = 0.8
# Batch-1 decode draws ~37 % of board power on an H100 (261 W of 700 W, perf-model.md §8.1 [M]);
# prefill ~80 %; consumer cards decoding sit higher (3090 337–389 W of 350 W in llama.cpp).
DECODE_DRAW_SHARE = 0.6
PREFILL_DRAW_SHARE = 0.85


@dataclass(frozen=True, slots=True)
class PowerEstimate:
    board_watts: int
    draw_watts: int
    psu_watts: int | None
    system_watts: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "board_watts": self.board_watts,
            "draw_watts": self.draw_watts,
            "system_watts": self.system_watts,
            "psu_watts": self.psu_watts,
        }


def psu_size(system_watts: float) -> int | None:
    """Smallest standard PSU that carries ``system_watts`` sustained at 80 % load."""
    need = system_watts / PSU_SUSTAINED_SHARE
    return next((s for s in PSU_SIZES_W if s >= need), None)


def estimate_power(rig: Rig, memory: MemoryEstimate, speed: object | None = None) -> PowerEstimate:
    """Board power, estimated GPU draw and recommended PSU for one node of ``rig``."""
    board = sum(g.board_power_w for g in rig.gpus)
    draw = math.ceil(board * DECODE_DRAW_SHARE)
    if any(g.is_apple for g in rig.gpus):
        return PowerEstimate(board, draw, None, board)
    system = board + DEFAULT_CPU_W + DEFAULT_PLATFORM_W
    return PowerEstimate(board, draw, psu_size(system), system)
