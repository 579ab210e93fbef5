"""Platforms: whether a host takes a rig's GPUs, at how many PCIe lanes each, in which slots,
with what cooling — and NVLink bridges.

Pure functions of catalogue records (``catalog/data/platforms.toml`` explains each field).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .catalog.records import GPU, Platform

PLATFORM_CLASSES = ("desktop", "hedt", "server")
#: Electrical widths a PCIe slot runs at; a CPU's lanes are split into these.
PCIE_WIDTHS = (16, 8, 4)
#: Baseboard form factors (no PCIe slot): they need a platform with ``gpu_slots == 0``.
BASEBOARD_FORM_FACTORS = ("sxm", "oam")
#: Open-air consumer coolers exhaust into the case; three or more stacked recirculate each
#: other's heat (the guide: "GPU spacing of at least 2 slots between cards"; blower and
#: passive-in-server cards exhaust out of the chassis).
OPEN_AIR_STACK_LIMIT = 2
#: A desktop CPU feeds two GPU slots (x8/x8); more cards belong in a workstation.
DESKTOP_GPUS = 2
#: Server boards priced bare (often used in open frames): passive cards still need a chassis.
BARE_SERVER_BOARDS = frozenset({"epyc-7002-server"})
#: Platforms whose catalogue cost already includes a PSU, and its rating (platforms.toml notes:
#: the EPYC 7002 source does not itemise its 1600 W unit).
PSU_INCLUDED_W = {"epyc-7002-server": 1600}


@dataclass(frozen=True, slots=True)
class NvlinkInfo:
    """What NVLink the rig's GPUs can use."""

    kind: str  # "none" | "bridge" | "sxm"
    generation: int | None
    gb_per_s: float | None
    max_gpus: int | None
    full: bool  # every GPU of the rig on one NVLink domain

    def describe(self) -> str:
        if self.kind == "none":
            return "no NVLink"
        speed = f" {self.gb_per_s:g} GB/s" if self.gb_per_s else ""
        gen = f" gen {self.generation}" if self.generation else ""
        if self.kind == "sxm":
            return f"NVLink{gen} over NVSwitch{speed}"
        scope = "all GPUs" if self.full else f"pairs of {self.max_gpus or 2} only"
        return f"NVLink{gen} bridge{speed}, {scope}"


@dataclass(frozen=True, slots=True)
class PlatformFit:
    """How one node of a rig sits in one platform."""

    platform: Platform
    gpus: int
    lanes_per_gpu: int
    pcie_generation: int
    slots_used: int
    needs_risers: bool
    nvlink: NvlinkInfo
    notes: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def fits(self) -> bool:
        return not self.problems

    @property
    def cost_usd(self) -> float | None:
        """The platform's sourced cost, or None when no source prices it."""
        return self.platform.cost_usd

    @property
    def platform_class(self) -> str:
        return self.platform.platform_class


def nvlink_info(gpus: Sequence[GPU]) -> NvlinkInfo:
    """NVLink of a node: only identical GPUs link; a bridge joins up to ``nvlink_max_gpus``."""
    kinds = {g.nvlink for g in gpus}
    first = gpus[0]
    if len({g.id for g in gpus}) > 1 or kinds != {first.nvlink} or first.nvlink == "none":
        return NvlinkInfo("none", None, None, None, False)
    limit = first.nvlink_max_gpus or 2
    full = first.nvlink == "sxm" or len(gpus) <= limit
    return NvlinkInfo(first.nvlink, first.nvlink_generation, first.nvlink_gb_per_s, limit, full)


def lanes_per_gpu(n_gpus: int, platform: Platform, gpus: Sequence[GPU] = ()) -> int:
    """Electrical lanes each GPU gets: the widest of x16/x8/x4 that the platform's GPU lanes
    give every card (never more than a card's own width).

    >>> from rigplan.catalog import load_catalog
    >>> am5 = load_catalog().platforms["am5-desktop"]
    >>> lanes_per_gpu(1, am5), lanes_per_gpu(2, am5), lanes_per_gpu(3, am5)
    (16, 8, 4)
    """
    width = next((w for w in PCIE_WIDTHS if n_gpus * w <= platform.cpu_pcie_lanes), PCIE_WIDTHS[-1])
    own = min((g.pcie_lanes or PCIE_WIDTHS[0] for g in gpus), default=PCIE_WIDTHS[0])
    return min(width, own)


def _slot_positions(gpus: Sequence[GPU], spacing: int) -> int:
    """GPU slots the cards cover when mounted directly; the last card may overhang the board."""
    if not gpus:
        return 0
    covered = sum(max(1, math.ceil(g.slot_width / spacing)) for g in gpus[:-1]) if spacing > 0 else 0
    return covered + 1


def fit_platform(gpus: Sequence[GPU], platform: Platform) -> PlatformFit:
    """Check one node's GPUs (in rig order) against ``platform``."""
    n = len(gpus)
    lanes = lanes_per_gpu(n, platform, gpus)
    generation = min([platform.pcie_generation, *(g.pcie_generation for g in gpus if g.pcie_generation)])
    pcie_cards = [g for g in gpus if g.form_factor not in BASEBOARD_FORM_FACTORS]
    used, risers, slot_notes = _slot_notes(pcie_cards, n, lanes, platform)
    cooling_problems, cooling_notes = _cooling_checks(gpus, platform, risers)
    link = nvlink_info(gpus)
    bridge_notes: list[str] = []
    if link.kind == "bridge" and platform.slot_spacing > 0:
        span = max(1, math.ceil(gpus[0].slot_width / platform.slot_spacing)) * platform.slot_spacing
        bridge_notes.append(f"NVLink needs a {span}-slot bridge (bridges come in fixed widths)")
    return PlatformFit(
        platform=platform,
        gpus=n,
        lanes_per_gpu=lanes,
        pcie_generation=generation,
        slots_used=used,
        needs_risers=risers,
        nvlink=link,
        notes=(*slot_notes, *cooling_notes, *bridge_notes),
        problems=(*_mounting_problems(gpus, platform), *cooling_problems),
    )


def _mounting_problems(gpus: Sequence[GPU], platform: Platform) -> list[str]:
    """What stops ``gpus`` going into ``platform`` at all: module vs card, whole machines, count."""
    problems: list[str] = []
    baseboard = [g for g in gpus if g.form_factor in BASEBOARD_FORM_FACTORS]
    pcie_cards = [g for g in gpus if g.form_factor not in BASEBOARD_FORM_FACTORS]
    if baseboard and pcie_cards:
        problems.append("SXM/OAM modules and PCIe cards cannot share a baseboard")
    if platform.gpu_slots == 0 and pcie_cards:
        problems.append(f"{platform.id} takes SXM/OAM modules on its baseboard, not PCIe cards")
    if platform.gpu_slots > 0 and baseboard:
        problems.append(
            f"{baseboard[0].id} is a {baseboard[0].form_factor.upper()} module: it needs an 8-GPU baseboard server"
        )
    if any(g.is_system for g in gpus):
        problems.append("a whole machine on one chip (Apple, DGX Spark, Strix Halo) is its own host")
    if len(gpus) > platform.max_gpus:
        problems.append(f"{len(gpus)} GPUs exceed the {platform.max_gpus} that {platform.id} carries")
    return problems


def _slot_notes(pcie_cards: Sequence[GPU], n: int, lanes: int, platform: Platform) -> tuple[int, bool, list[str]]:
    """(slots the cards cover, whether risers are needed, notes on slots and lanes)."""
    if platform.gpu_slots == 0 or not pcie_cards:
        return 0, False, []
    notes: list[str] = []
    used = _slot_positions(pcie_cards, platform.slot_spacing)
    risers = used > platform.gpu_slots
    if risers:
        notes.append(
            f"the cards cover {used} of {platform.gpu_slots} GPU slots at {platform.slot_spacing}-slot "
            "spacing: mount some on risers or an open frame"
        )
    extra = n - platform.gpu_slots
    if extra > 0 and not risers:
        notes.append(f"{extra} GPU(s) beyond the {platform.gpu_slots} CPU-fed slots run from chipset or riser slots")
    if platform.platform_class == "desktop" and n >= 2:
        notes.append(f"a desktop CPU splits its {platform.cpu_pcie_lanes} GPU lanes: x{lanes} per GPU")
    return used, risers, notes


def _cooling_checks(gpus: Sequence[GPU], platform: Platform, risers: bool) -> tuple[list[str], list[str]]:
    """(problems, notes) about airflow: passive cards need a server chassis; open-air cards
    side by side recirculate heat."""
    problems: list[str] = []
    notes: list[str] = []
    passive = [g for g in gpus if g.cooling == "passive" and g.form_factor not in BASEBOARD_FORM_FACTORS]
    if passive and platform.platform_class != "server":
        problems.append(f"{passive[0].id} is passively cooled: it needs a server chassis's forced airflow")
    elif passive and platform.id in BARE_SERVER_BOARDS:
        notes.append(
            f"{passive[0].id} is passively cooled: mount the board in a server chassis with forced "
            "airflow (the price is for the bare board)"
        )
    open_air = [g for g in gpus if g.cooling == "open-air"]
    if len(open_air) > OPEN_AIR_STACK_LIMIT and not risers:
        notes.append(
            f"{len(open_air)} open-air cards side by side recirculate heat: leave a slot free between cards, "
            "use risers, or choose blower cards"
        )
    return problems, notes


def _cost_key(fit: PlatformFit) -> tuple[int, float]:
    cost = fit.cost_usd
    return (0, cost) if cost is not None else (1, 0.0)


def natural_classes(gpus: Sequence[GPU]) -> tuple[tuple[str, ...], ...]:
    """Groups of platform classes to try for a node, in the order a builder would: a desktop for
    one or two cards, then a workstation or server board; passive and baseboard GPUs only in a
    server.  Within a group the cheapest (or widest) platform wins."""
    if any(g.cooling == "passive" or g.form_factor in BASEBOARD_FORM_FACTORS for g in gpus):
        return (("server",),)
    if len(gpus) <= DESKTOP_GPUS:
        return (("desktop",), ("hedt", "server"))
    return (("hedt", "server"),)


def choose_platform(
    gpus: Sequence[GPU],
    platforms: Iterable[Platform],
    *,
    platform_class: str | None = None,
    prefer: str = "cheapest",
) -> tuple[PlatformFit | None, tuple[PlatformFit, ...]]:
    """The platform a node of ``gpus`` goes in → (chosen fit or None, every fit checked).

    Without ``platform_class`` the classes of :func:`natural_classes` are tried in order.
    ``prefer``: "cheapest" (sourced cost first, then fewer risers, more lanes), "lanes" (most
    lanes per GPU, then cheapest), or "price": the lowest sourced cost among every class that
    fits, whatever the builder's order (a used EPYC board can undercut a new desktop: the
    planner's choice, issue 15).
    """
    pool = tuple(platforms)
    groups = ((platform_class,),) if platform_class else natural_classes(gpus)
    if prefer == "price" and len(groups) > 1:
        groups = (tuple(c for g in groups for c in g),)
    checked: list[PlatformFit] = []
    for group in groups:
        fits = [fit_platform(gpus, p) for p in pool if p.platform_class in group]
        checked.extend(fits)
        good = [f for f in fits if f.fits]
        if not good:
            continue
        if prefer == "lanes":
            best = min(good, key=lambda f: (-f.lanes_per_gpu, f.needs_risers, *_cost_key(f)))
        else:
            best = min(good, key=lambda f: (*_cost_key(f), f.needs_risers, -f.lanes_per_gpu))
        return best, tuple(checked)
    return None, tuple(checked)
