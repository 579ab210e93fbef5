"""GPU + host-RAM rigs: what a big model needs in system memory when layers (and with them a
mixture-of-experts model's experts) live in RAM, what that RAM costs, and which rigs to try.

llama.cpp keeps what does not fit on the GPUs in host memory (``-ngl`` partial offload; for MoE
models ``--override-tensor exps=CPU`` / ``-ncmoe N`` keeps only the experts there).  rigplan's
placement offloads whole layers (attention and experts of a layer together); for MoE models
:mod:`rigplan.expert_offload` re-lays the same GPU memory out as ``-ncmoe`` does (attention and
the KV cache on the GPU) and scales the speed estimate by the two layouts' bandwidth ratio.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .catalog.records import GPU, Platform
from .units import GIB

#: RAM prices per GB, by module kind, with their sources (May 2026 bills of materials that
#: the platforms.toml rows also use): desktop DDR5 UDIMM 128 GB for $380 (bestllmfor.com dual
#: RTX 3090 build); server/workstation DDR5 RDIMM 8 x 64 GB for $2,500 (the wrx90-hedt row).
RAM_USD_PER_GB: dict[str, float] = {"udimm": 380.0 / 128, "rdimm": 2500.0 / 512}
RAM_PRICE_SOURCES: dict[str, tuple[str, str]] = {
    "udimm": ("https://bestllmfor.com/best/dual-rtx-3090-budget-rig/ (128 GB DDR5-5600 $380)", "2026-05-16"),
    "rdimm": ("wrx90-hedt platform bill of materials (8x 64 GB DDR5-5600 RDIMM $2,500)", "2026-05-01"),
}
#: RAM each platform's catalogue cost already includes (from its notes); others: none stated.
PLATFORM_RAM_INCLUDED_GB: dict[str, int] = {"am5-desktop": 128, "wrx90-hedt": 512}
#: Memory channels per platform, from its bandwidth and DIMM speed: AM5 89.6 GB/s = 2 x
#: DDR5-5600 (44.8); EPYC 7002 204.8 = 8 x DDR4-3200 (25.6); WRX90 332.8 = 8 x DDR5-5200 (41.6).
PLATFORM_CHANNELS: dict[str, int] = {"am5-desktop": 2, "epyc-7002-server": 8, "wrx90-hedt": 8}
#: Host memory the OS, the engine's host buffers and the page cache need besides the offloaded
#: weights (an assumption: llama.cpp maps the GGUF file; 8 GiB keeps a desktop usable).
OS_RESERVE_GIB = 8
#: Sizes RAM is bought in (power-of-two and 1.5x kits of 2-8 DIMMs).
RAM_KIT_GB = (32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
#: GPU types tried for offload rigs: the cheapest per-GPU price at each memory size, this many.
OFFLOAD_GPU_TYPES = 4
#: GPU counts tried with host RAM: one or two cards (more cards rarely beat more RAM bandwidth).
OFFLOAD_GPU_COUNTS = (1, 2)
#: A model is worth an offload rig when its 4-bit weights exceed this (two 24 GB cards).
OFFLOAD_MIN_WEIGHTS_GIB = 44


def dimm_kind(platform: Platform) -> str:
    return "udimm" if platform.platform_class == "desktop" else "rdimm"


def ram_to_buy_gb(host_bytes: float) -> int | None:
    """The smallest RAM kit holding ``host_bytes`` plus the OS reserve; None if over 2 TB."""
    need = host_bytes / GIB + OS_RESERVE_GIB
    return next((k for k in RAM_KIT_GB if k >= need), None)


@dataclass(frozen=True, slots=True)
class HostRam:
    """The host memory an offload rig needs and what buying it costs."""

    gb: int
    channels: int | None
    bandwidth_gb_per_s: float
    usd: float
    source: str
    as_of: str

    def describe(self) -> str:
        ch = f"{self.channels} channels, " if self.channels else ""
        return f"host RAM {self.gb} GB ({ch}{self.bandwidth_gb_per_s:g} GB/s)"


def host_ram(platform: Platform, host_bytes: float, owned_gb: int | None = None) -> HostRam | None:
    """RAM for ``host_bytes`` on ``platform``, priced beyond what the platform's cost includes
    (an owned PC: beyond the ``owned_gb`` it has); None when the platform cannot hold it."""
    gb = ram_to_buy_gb(host_bytes)
    if gb is None or gb > platform.max_host_ram_gb:
        return None
    kind = dimm_kind(platform)
    included = PLATFORM_RAM_INCLUDED_GB.get(platform.id, 0) if owned_gb is None else owned_gb
    extra = max(gb - included, 0)
    source, as_of = RAM_PRICE_SOURCES[kind]
    return HostRam(
        gb,
        PLATFORM_CHANNELS.get(platform.id),
        platform.host_memory_bandwidth_gb_per_s,
        math.ceil(extra * RAM_USD_PER_GB[kind]),
        source,
        as_of,
    )


def offload_gpus(gpus: Iterable[GPU], price_of: dict[str, float]) -> list[GPU]:
    """GPU types to pair with host RAM: PCIe cards with an active cooler and a price, the
    cheapest at each memory size, the :data:`OFFLOAD_GPU_TYPES` cheapest of those."""
    best: dict[float, GPU] = {}
    for g in gpus:
        if g.form_factor != "pcie" or g.cooling == "passive" or g.id not in price_of:
            continue
        if g.memory_gb not in best or price_of[g.id] < price_of[best[g.memory_gb].id]:
            best[g.memory_gb] = g
    return sorted(best.values(), key=lambda g: price_of[g.id])[:OFFLOAD_GPU_TYPES]


def offload_platforms(platforms: Sequence[Platform]) -> list[Platform]:
    """Priced platforms that take GPUs in slots, the cheapest and the fastest RAM first."""
    priced = [p for p in platforms if p.cost_usd is not None and p.gpu_slots > 0]
    cheap = sorted(priced, key=lambda p: p.cost_usd or 0.0)[:1]
    fast = sorted(priced, key=lambda p: -p.host_memory_bandwidth_gb_per_s)[:1]
    return list(dict.fromkeys([*cheap, *fast]))
