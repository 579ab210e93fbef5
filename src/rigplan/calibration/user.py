"""The user's own calibration profiles (stored in the user config dir)."""

from __future__ import annotations


def load_user_profile(engine: str, gpu_ids: list[str]) -> object | None:
    """The user's fitted profile for this engine and GPUs, or None."""
    return None
