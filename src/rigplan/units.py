"""Unit constants and the one place numbers are formatted for people.

Inside rigplan bytes are integers and rates carry their unit in the name
(``bandwidth_gb_per_s`` is 1e9 bytes per second).  GiB (2**30) and GB (1e9) are never mixed:
memory sizes print in GiB as llama.cpp and nvidia-smi do, bandwidths in GB/s as vendors do.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024**2
GIB = 1024**3
GB = 10**9
TB = 10**12
TERA = 1e12


def gib(n_bytes: float) -> float:
    """Bytes to GiB."""
    return n_bytes / GIB


def format_gib(n_bytes: float | None, digits: int = 1) -> str:
    """``25_769_803_776`` -> ``'24.0 GiB'``; ``None`` -> ``'—'``."""
    if n_bytes is None:
        return "—"
    return f"{n_bytes / GIB:.{digits}f} GiB"


def format_rate(value: float | None, unit: str = "tok/s") -> str:
    """Three significant figures with a unit: ``19.63`` -> ``'19.6 tok/s'``."""
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    if value >= 10:
        return f"{value:.1f} {unit}"
    return f"{value:.2f} {unit}"


def format_usd(value: float | None) -> str:
    if value is None:
        return "price unknown"
    return f"${value:,.0f}"
