"""Which profile an estimate uses, how far it travels from the profile's rows, and its ranges.

Split from :func:`rigplan.speed.estimate_speed`: the profile choice (build, backend, borrowed
profiles), the reasons a range is widened, and the spreads (the profile's, for a dense or MoE
model, or the user's own from ``rigplan calibrate``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..catalog.records import Model
from ..engines import LLAMA_CPP, Engine
from ..rig import Rig
from . import hardware
from .profile import EngineProfile, Spread, UserCorrection
from .ranges import widening
from .select import BORROWED_BACKEND_WIDENING, build_of, choose_profile, hardware_case, model_kind
from .settings import SpeedSettings
from .work import ForwardWork

if TYPE_CHECKING:
    from . import SpeedWorkload


def off_data(
    profile: EngineProfile, engine: Engine, rig: Rig, model: Model, work: ForwardWork, workload: SpeedWorkload
) -> list[str]:
    """The ways this estimate leaves the conditions the profile was fitted on (hardware apart:
    :func:`.select.hardware_case`)."""
    reasons = []
    if work.host_layers:
        reasons.append("layers offloaded to host RAM")
    if engine.family == LLAMA_CPP and work.split in ("row", "tensor"):
        reasons.append(f"llama.cpp {work.split} split not in the calibration rows")
    if rig.nodes > 1:
        reasons.append("several nodes")
    if workload.batch > 1 and profile.rows:
        reasons.append("batch > 1 (profile fitted at batch 1)")
    if model.is_moe and "moe" not in profile.calibrated_model_kinds:
        reasons.append("mixture-of-experts model (profile fitted on dense models)")
    return reasons


def extrapolation_of(
    profile: EngineProfile,
    choice: ProfileChoice,
    engine: Engine,
    rig: Rig,
    model: Model,
    work: ForwardWork,
    workload: SpeedWorkload,
) -> tuple[list[str], float, str]:
    """(reasons the estimate leaves the calibrated conditions, range widening, extrapolation case)."""
    reasons = off_data(profile, engine, rig, model, work, workload)
    case, hardware_factor = hardware_case(profile, rig.gpus)
    if case in ("new architecture", "new vendor"):
        reasons.insert(0, f"hardware: {case} ({', '.join(sorted({hardware.hardware_kind(g) for g in rig.gpus}))})")
    past = past_fitted_builds(profile, choice.build)
    if past:
        reasons.append(past)
    if choice.borrowed:
        hardware_factor *= BORROWED_BACKEND_WIDENING
        reasons.append(f"backend {choice.backend} borrows the {profile.backend} profile")
    extrapolation = f"{case}; {model_kind(model)}; {'calibrated' if profile.rows else 'prior'} profile {profile.name}"
    return reasons, widening(reasons, hardware_factor), extrapolation


def past_fitted_builds(profile: EngineProfile, build: int | None) -> str | None:
    """The reason a range widens for a build newer than every row the profile was fitted on
    (its prompt kernels are then priced as the newest fitted build's: ``with_settings``)."""
    if build is None or not profile.fitted_builds or build <= profile.fitted_builds[1]:
        return None
    first, last = profile.fitted_builds
    return f"build b{build} is past the fitted builds (b{first}–b{last}): priced as b{last}"


@dataclass(frozen=True, slots=True)
class ProfileChoice:
    profile: EngineProfile
    borrowed: bool
    backend: str | None
    warnings: tuple[str, ...]
    #: The build the caller named (None: the profile's newest fitted build).
    build: int | None = None


def resolve_profile(
    profiles: Mapping[str, EngineProfile] | None,
    profile: EngineProfile | None,
    engine: Engine,
    rig: Rig,
    settings: SpeedSettings | None,
) -> ProfileChoice:
    """The profile to use (``profile`` when given), whether its backend is borrowed, and why."""
    backend = settings.backend if settings else None
    if profile is not None:
        return ProfileChoice(profile, False, backend, (), build_of(settings))
    if profiles is None:
        raise TypeError("estimate_speed needs profiles= or profile=")
    choice = choose_profile(profiles, engine, rig, settings)
    warnings = []
    if choice.borrowed:
        name = choice.profile.name
        warnings.append(
            f"no {engine.family} profile for backend {choice.backend}: speeds use {name} with a wider range"
        )
    build = build_of(settings)
    if build is not None and choice.profile.first_build > build:
        warnings.append(f"build b{build} predates every profile; {choice.profile.name} used")
    return ProfileChoice(choice.profile, choice.borrowed, choice.backend, tuple(warnings), build)


@dataclass(frozen=True, slots=True)
class Ranges:
    """Spreads, widenings and the user's correction factors for one estimate."""

    decode_spread: Spread
    prefill_spread: Spread
    decode_widen: float
    prefill_widen: float
    decode_factor: float
    prefill_factor: float
    label: str
    user: bool
    reasons: tuple[str, ...]
    extrapolation: str

    def text(self, kind: str) -> str:
        if kind == "decode":
            return range_text(self.decode_spread, self.decode_widen, list(self.reasons), self.extrapolation)
        return range_text(self.prefill_spread, self.prefill_widen, list(self.reasons), self.extrapolation)


def ranges_for(
    profile: EngineProfile,
    model: Model,
    engine: Engine,
    rig: Rig,
    user_profile: object | None,
    widen: float,
    reasons: list[str],
    extrapolation: str,
) -> Ranges:
    """The profile's spreads for this model kind, replaced by the user's own where they apply."""
    decode_spread, prefill_spread = profile.spreads(model.is_moe)
    label = profile.label()
    user_key = LLAMA_CPP if engine.family == LLAMA_CPP else engine.id
    user = user_profile
    if not (isinstance(user, UserCorrection) and user.applies_to(user_key, tuple(g.id for g in rig.gpus))):
        return Ranges(
            decode_spread, prefill_spread, widen, widen, 1.0, 1.0, label, False, tuple(reasons), extrapolation
        )
    own_decode = user.decode_spread is not None and user.decode_factor is not None
    own_prefill = user.prefill_spread is not None and user.prefill_factor is not None
    return Ranges(
        user.decode_spread if own_decode and user.decode_spread else decode_spread,
        user.prefill_spread if own_prefill and user.prefill_spread else prefill_spread,
        1.0 if user.decode_factor is not None else widen,
        1.0 if user.prefill_factor is not None else widen,
        user.decode_factor or 1.0,
        user.prefill_factor or 1.0,
        f"{label} + your results ({user.rows} rows, {user.fitted_on})",
        True,
        tuple(reasons),
        extrapolation,
    )


def range_text(spread: Spread, widen: float, reasons: list[str], extrapolation: str) -> str:
    lo, hi = spread.factors()
    why = f"; widened ×{widen:.2f} for: {'; '.join(reasons)}" if widen > 1 else ""
    return (
        f"point × [{lo:.3f}, {hi:.3f}] = held-out residual band (10th–90th percentile, widened to "
        f"cover 80 % of left-out sources and GPUs; log {spread.low:+.3f} … {spread.high:+.3f}){why}; "
        f"extrapolation: {extrapolation}"
    )
