"""Which engine profile an estimate uses, and how far the estimate travels from its data.

Profiles of one engine are keyed by backend and era: ``llama.cpp-cuda-2024`` (May-2024 builds)
and ``llama.cpp-cuda`` (current builds) both describe llama.cpp on CUDA; a build number picks the
newest era it has reached, no build picks the newest profile.  A backend without a profile of
its own borrows the discrete-GPU one (CUDA) with a wider range, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..backends import parse_build
from ..catalog.records import GPU, Model
from ..engines import Engine
from ..rig import Rig
from . import hardware
from .profile import EngineProfile
from .settings import SpeedSettings

#: Log-range multiplier when the backend has no profile of its own and borrows another's [D].
BORROWED_BACKEND_WIDENING = 1.5
#: Log-range multiplier when no GPU of the rig's vendor is in the profile's rows (a new vendor
#: differs in compiler, kernels and drivers, not only in architecture) [D].
NEW_VENDOR_WIDENING = 2.0


@dataclass(frozen=True, slots=True)
class Choice:
    """The profile an estimate uses and the backend it was asked for."""

    profile: EngineProfile
    backend: str
    borrowed: bool  # the backend has no profile of its own


def build_of(settings: SpeedSettings | None) -> int | None:
    """The llama.cpp build number of ``settings.engine_version`` ("b6400" → 6400), or None."""
    return parse_build(settings.engine_version) if settings else None


def base_backend(rig: Rig) -> str:
    """ "metal" for Apple chips, else "cuda"."""
    return "metal" if any(g.is_apple for g in rig.gpus) else "cuda"


def choose_profile(
    profiles: Mapping[str, EngineProfile], engine: Engine, rig: Rig, settings: SpeedSettings | None = None
) -> Choice:
    """The profile for ``engine`` on ``rig`` with ``settings`` (backend, build).

    Raises:
        LookupError: no profile names the engine (a packaging error).
    """
    settings = settings or SpeedSettings()
    backend = settings.backend or base_backend(rig)
    candidates = [p for p in profiles.values() if engine.id in p.engines]
    if not candidates:
        raise LookupError(f"no speed profile for engine {engine.id!r}")
    same = [p for p in candidates if p.backend == backend]
    borrowed = not same
    if borrowed:
        same = [p for p in candidates if p.backend == base_backend(rig)] or candidates
    build = build_of(settings) if engine.family == "llama.cpp" else None
    if build is not None:
        reached = [p for p in same if p.first_build <= build]
        pick = max(reached, key=lambda p: p.first_build) if reached else min(same, key=lambda p: p.first_build)
    else:
        pick = max(same, key=lambda p: p.first_build)
    return Choice(pick, backend, borrowed and backend != pick.backend)


def select_profile(
    profiles: Mapping[str, EngineProfile], engine: Engine, rig: Rig, settings: SpeedSettings | None = None
) -> EngineProfile:
    """The profile for ``engine`` on ``rig``'s backend (see :func:`choose_profile`)."""
    return choose_profile(profiles, engine, rig, settings).profile


def model_kind(model: Model) -> str:
    return "moe" if model.is_moe else "dense"


def hardware_case(profile: EngineProfile, gpus: Sequence[GPU]) -> tuple[str, float]:
    """How the rig's GPUs relate to the profile's rows, and the log-range multiplier for it:
    "GPU seen", "same architecture", "new architecture" (×uncalibrated_widening) or "new
    vendor" (×NEW_VENDOR_WIDENING)."""
    if not profile.rows:
        return "prior profile", 1.0
    ids = {g.id for g in gpus}
    if profile.calibrated_gpus and ids <= set(profile.calibrated_gpus):
        return "GPU seen", 1.0
    kinds = {hardware.hardware_kind(g) for g in gpus}
    if kinds <= set(profile.calibrated_kinds):
        return "same architecture", 1.0
    seen_vendors = {k.split("/", 1)[1] for k in profile.calibrated_kinds}
    if profile.calibrated_gpus and not _vendors_seen(gpus, seen_vendors):
        return "new vendor", NEW_VENDOR_WIDENING
    return "new architecture", profile.uncalibrated_widening


#: Architecture → vendor, for "is this vendor in the rows" (catalogue architectures).
_AMD_ARCHS = ("cdna", "rdna", "gcn")


def _vendor_of_arch(arch: str) -> str:
    if arch.startswith("apple"):
        return "apple"
    if arch.startswith(_AMD_ARCHS):
        return "amd"
    return "nvidia"


def _vendors_seen(gpus: Sequence[GPU], archs: set[str]) -> bool:
    seen = {_vendor_of_arch(a) for a in archs}
    return all(g.vendor in seen for g in gpus)
