"""Calibration rows made ready for the fit: each measurement run through ``estimate()`` once.

A :class:`Prepared` row keeps the model, rig, memory plan and workload the speed model needs,
so a fit evaluates a profile on hundreds of rows without re-planning them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import RigplanError
from ..speed import Link, SpeedWorkload, predict, with_settings
from ..speed.hardware import hardware_kind
from ..speed.prefill import BUILD_ERA_REFERENCE
from ..speed.profile import EngineProfile
from ..speed.settings import SpeedSettings
from . import dataset
from .dataset import Measurement


@dataclass(frozen=True, slots=True)
class Prepared:
    """A measurement with everything the speed model needs, computed once."""

    m: Measurement
    fits: bool
    args: tuple[Any, ...]  # (model, rig, memory, workload, link, engine family, quant)
    kind: str  # hardware kind of its GPUs

    def predict(self, profile: EngineProfile) -> float:
        model, rig, memory, workload, link, family, quant = self.args
        version = f"b{self.m.build}" if self.m.build else None
        profile = with_settings(profile, SpeedSettings(engine_version=version, flash_attention=self.m.flash_attention))
        if not self.m.build:  # a PR table without a build number: the build era's reference build,
            # as the fit prices it (a trial profile has no fitted builds), not the profile's newest
            reference = dataclasses.replace(profile.behaviour, build=BUILD_ERA_REFERENCE)
            profile = dataclasses.replace(profile, behaviour=reference)
        if self.m.ubatch or self.m.batch:  # the row's own -ub / -b
            behaviour = dataclasses.replace(
                profile.behaviour,
                micro_batch_tokens=self.m.ubatch or profile.behaviour.micro_batch_tokens,
                batch_tokens=self.m.batch or profile.behaviour.batch_tokens,
            )
            profile = dataclasses.replace(profile, behaviour=behaviour)
        decode, prefill, _ = predict(profile, model, rig, memory, workload, link, engine_family=family, quant=quant)
        if self.m.kind == "decode":
            assert decode is not None
            return 1.0 / decode[0]
        assert prefill is not None
        return self.m.prompt_tokens / prefill.total_s


def prepare(m: Measurement) -> Prepared | None:
    """Run the estimate pipeline for a measurement (None if rigplan refuses the layout)."""
    p = prepare_or_reason(m)
    return p if isinstance(p, Prepared) else None


def prepare_or_reason(m: Measurement) -> Prepared | str:
    """Run the estimate pipeline for a measurement, or say why rigplan cannot."""
    from ..estimate import estimate

    try:
        e = estimate(
            m.model_input(),
            m.rig,
            quant=m.quant,
            engine=m.engine,
            prompt_tokens=m.prompt_tokens,
            output_tokens=m.output_tokens,
            context=m.depth + m.prompt_tokens + m.output_tokens,
            split=m.split,
            use_user_calibration=False,
            force=True,
            catalog=dataset.calibration_catalog(),
            backend=m.backend if m.engine == "llama.cpp" else None,
        )
    except RigplanError as err:
        return str(err)
    workload = SpeedWorkload(
        m.prompt_tokens, m.output_tokens, e.workload.context, e.workload.batch, e.workload.kv_dtype, m.depth
    )
    link = Link(e.link.kind, e.link.lanes, e.link.p2p)
    args = (e.model, e.rig, e.memory, workload, link, e.engine.family, e.quant)
    return Prepared(m, e.fits, args, hardware_kind(e.rig.gpus[0]))


#: rigplan prints no speed for a layout its memory plan says does not fit, so the rows of such
#: layouts are neither fitted nor counted in the accuracy figures.  They are measurements of
#: something else: RADV (Vulkan) lets allocations past VRAM spill into host memory (GTT), e.g.
#: 2x R9700 BF16 Qwen3-Coder-30B at 32k depth decodes at 5 tok/s where the Q8_0 file (fits)
#: does 41 tok/s (kyuz0/amd-r9700-ai-toolboxes, llamacpp_current.csv:430 vs :18) [D].  14 of the
#: 2025–26 rows, none of the May-2024 ones (whose fits/OOM verdicts agree with the data).
PRICES_ONLY_FITTING = True


def calibration_rows(
    engine: str, backend: str, prepared: Sequence[Prepared], era: str = dataset.ERA_2024
) -> list[Prepared]:
    """Non-LEGACY, measured (not OOM) rows of one engine on one backend from one era that
    rigplan's memory plan says fit (:data:`PRICES_ONLY_FITTING`)."""
    out = []
    for r in prepared:
        m = r.m
        if m.engine != engine or m.legacy or m.oom or not m.tokens_per_s:
            continue
        if PRICES_ONLY_FITTING and not r.fits:
            continue
        if m.backend != backend or (engine == "llama.cpp" and m.era != era):
            continue
        out.append(r)
    return out


def prepare_all(log: Callable[[str], None] = print) -> list[Prepared]:
    out = []
    for m in dataset.measurements():
        p = prepare_or_reason(m)
        if isinstance(p, str):
            log(f"  skipped {m.ref}: {p.splitlines()[0][:160]}")
            continue
        out.append(p)
    return out


@dataclass
class FitResult:
    profile: EngineProfile
    rows: list[Prepared]
    fitted: dict[str, float]  # ref -> prediction with all rows
    held_out: dict[str, float]  # ref -> prediction with the row's GPU left out
    names: tuple[str, ...]
    #: ref -> prediction with the row's source left out (empty with a single source).
    held_out_source: dict[str, float] = field(default_factory=dict)


__all__ = ["FitResult", "Prepared", "calibration_rows", "prepare", "prepare_all", "prepare_or_reason"]
