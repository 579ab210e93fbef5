"""The PC a buyer already owns (``--have desktop`` or a described PC): GPUs are added to it and
only the added parts are paid.

``desktop`` (or ``pc``) means one of the catalogue's desktop platforms, already paid for, with a
PSU of unknown size (the plan says how many watts it must deliver).  A described PC gives its
slots, CPU lanes, PSU and installed RAM: ``pc:slots=2,lanes=24,psu=850,ram=64`` (also ``gen=4``,
``spacing=3``); the missing fields come from the catalogue's cheapest desktop platform.  A PSU
smaller than the rig needs is replaced and priced; RAM an offload rig needs beyond what the PC
has (:data:`OWNED_PC_RAM_GB` unless ``ram=`` says) is bought and priced.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .catalog.records import Catalog, Platform
from .errors import InvalidValueError

#: Words that name an owned desktop PC in ``--have``.
HOST_WORDS = ("desktop", "pc", "my-pc")
#: Fields a described PC may give, and the Platform field each sets.
HOST_FIELDS = {
    "slots": "gpu_slots",
    "lanes": "cpu_pcie_lanes",
    "gen": "pcie_generation",
    "spacing": "slot_spacing",
    "psu": "psu",
    "ram": "ram_gb",  # installed RAM (not a Platform field)
}
#: RAM an owned PC is assumed to have when ``ram=`` does not say: 32 GB.  Steam Hardware Survey,
#: November 2025 (rigspot.co/steam-users-ram): 16 GB 40.94 %, 32 GB 36.96 % (+1.03 %/month, the
#: fastest-growing size), 64 GB 4.42 %, more 0.63 %.  32 GB is the common size of a PC built
#: recently; with 16 GB the offload rig's RAM bill is higher by 16 GB's price.
OWNED_PC_RAM_GB = 32
#: Sanity bounds on described fields (a desktop board has at most 8 x16 slots, 128 lanes).
HOST_LIMITS = {"slots": 8, "lanes": 128, "gen": 6, "spacing": 4, "psu": 3000, "ram": 2048}
_DESCRIBED = re.compile(r"^(?:pc|desktop)\s*[:(]\s*(.*?)\s*\)?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class OwnedHost:
    """An owned PC: the platform GPUs go in (None: any catalogue desktop), its PSU watts
    (None: unknown) and the RAM it has."""

    platform: Platform | None
    psu_watts: int | None
    ram_gb: int = OWNED_PC_RAM_GB

    def platforms(self, catalog: Catalog) -> tuple[Platform, ...]:
        if self.platform is not None:
            return (self.platform,)
        return tuple(p for p in catalog.platforms.values() if p.platform_class == "desktop")

    def describe(self) -> str:
        if self.platform is None:
            return "your desktop"
        return (
            f"your PC ({self.platform.gpu_slots} GPU slots, {self.platform.cpu_pcie_lanes} CPU lanes, "
            f"{self.ram_gb} GB RAM)"
        )


def is_host_word(text: str) -> bool:
    t = text.strip().lower()
    return t in HOST_WORDS or bool(_DESCRIBED.match(t))


def _base_desktop(catalog: Catalog) -> Platform:
    desktops = [p for p in catalog.platforms.values() if p.platform_class == "desktop"]
    if not desktops:
        raise InvalidValueError("have", "the catalogue has no desktop platform to describe your PC with")
    return min(desktops, key=lambda p: (p.cost_usd is None, p.cost_usd or 0.0, p.id))


def parse_owned_host(text: str, catalog: Catalog) -> OwnedHost:
    """``"desktop"`` or ``"pc:slots=2,lanes=24,psu=850"`` → :class:`OwnedHost`.

    Raises:
        InvalidValueError: an unknown field, a value that is not a whole number in range.
    """
    t = text.strip().lower()
    if t in HOST_WORDS:
        return OwnedHost(None, None)
    m = _DESCRIBED.match(t)
    if not m:
        raise InvalidValueError("have", f"expected 'desktop' or 'pc:slots=2,lanes=24,psu=850', got {text!r}")
    values: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in m.group(1).split(","))):
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or key not in HOST_FIELDS:
            raise InvalidValueError("have", f"{part!r}: fields are {', '.join(HOST_FIELDS)} (e.g. slots=2)")
        try:
            value = int(raw.strip().lower().removesuffix("w").removesuffix("gb"))
        except ValueError:
            raise InvalidValueError("have", f"{part!r}: {raw.strip()!r} is not a whole number") from None
        if not 1 <= value <= HOST_LIMITS[key]:
            raise InvalidValueError("have", f"{part!r}: {key} must be 1–{HOST_LIMITS[key]}")
        values[key] = value
    base = _base_desktop(catalog)
    changes: dict[str, object] = {HOST_FIELDS[k]: v for k, v in values.items() if k not in ("psu", "ram")}
    ram = values.get("ram", OWNED_PC_RAM_GB)
    changes["max_host_ram_gb"] = max(base.max_host_ram_gb, ram)
    slots = values.get("slots", base.gpu_slots)
    platform = dataclasses.replace(
        base,
        id="your-pc",
        name="your PC",
        max_gpus=max(slots, 1),
        cost_usd=0.0,
        source="you (--have)",
        examples=(),
        notes="described with --have; other fields as the catalogue's " + base.id,
        **changes,  # type: ignore[arg-type]
    )
    return OwnedHost(platform, values.get("psu"), ram)


def split_have(items: Iterable[str]) -> tuple[list[str], list[str]]:
    """``--have`` entries → (GPU rig strings, owned-PC descriptions)."""
    gpus: list[str] = []
    hosts: list[str] = []
    for item in items:
        (hosts if isinstance(item, str) and is_host_word(item) else gpus).append(item)
    return gpus, hosts
