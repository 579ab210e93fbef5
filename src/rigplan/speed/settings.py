"""The engine build a speed estimate is for (design.md §3, second round)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SpeedSettings:
    """Engine version, ggml backend and flash attention; None = the default.

    None everywhere means the newest engine profile, the GPU vendor's usual backend (cuda, rocm,
    vulkan, metal, sycl, cpu) and the build's default flash-attention setting.  The request
    records carry these values (``rigplan.requests``); the speed model receives this record.
    """

    engine_version: str | None = None
    backend: str | None = None
    flash_attention: bool | None = None
