"""What would make a training configuration fit: the changes people reach for, each estimated.

A configuration that does not fit gets the changes that would make it fit, fastest first: shard
more of the training state (ZeRO / FSDP), recompute activations, an 8-bit optimizer, optimizer
states in host RAM; LoRA and QLoRA last, since they change the job.  Each change is a full
estimate of the changed settings (pure: resolved records in, no I/O).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..catalog import Catalog
from ..errors import RigplanError
from ..headroom import Advice
from .evaluate import estimate_training_for
from .result import TrainingEstimate
from .settings import TrainingSettings
from .setup import Checkpointing, parse_checkpointing, parse_zero

__all__ = ["CHANGES", "training_advice"]

#: (kind, CLI words, settings changed), in the order people reach for them.  Per kind only the
#: first that fits is kept (the least sharding, the least recomputation that is enough); the
#: combined changes are tried only when no single one is enough.
CHANGES: tuple[tuple[str, str, Mapping[str, Any]], ...] = (
    ("shard", "--zero-stage 1", {"zero_stage": 1}),
    ("shard", "--zero-stage 2", {"zero_stage": 2}),
    ("shard", "--zero-stage 3", {"zero_stage": 3}),
    ("recompute", "--checkpointing selective", {"activation_checkpointing": "selective"}),
    ("recompute", "--checkpointing full", {"activation_checkpointing": True}),
    ("optimizer", "--optimizer adamw-8bit", {"optimizer": "adamw-8bit"}),
    ("offload", "--offload cpu", {"offload": "cpu"}),
    ("combined", "--zero-stage 3 --checkpointing full", {"zero_stage": 3, "activation_checkpointing": True}),
    (
        "combined",
        "--zero-stage 3 --checkpointing full --offload cpu",
        {"zero_stage": 3, "activation_checkpointing": True, "offload": "cpu"},
    ),
    ("method", "--method lora", {"method": "lora"}),
    ("method", "--method qlora", {"method": "qlora"}),
)

#: recomputation, least to most
_RECOMPUTE = (Checkpointing.NONE, Checkpointing.SELECTIVE, Checkpointing.FULL)
#: methods each method may step down to (pre-training is its own job: no adapters suggested)
_LIGHTER = {"full": ("lora", "qlora"), "lora": ("qlora",)}


def _adds(settings: TrainingSettings, change: Mapping[str, Any]) -> bool:
    """Whether ``change`` asks for more than ``settings`` already has (values as the training
    model reads them: ``"fsdp-full"`` is stage 3, ``"none"`` / False no recomputation)."""
    more = False
    for key, value in change.items():
        if key == "zero_stage":
            more |= value > parse_zero(settings.zero_stage)[0]
        elif key == "activation_checkpointing":
            now = _RECOMPUTE.index(parse_checkpointing(settings.activation_checkpointing))
            more |= _RECOMPUTE.index(parse_checkpointing(value)) > now
        elif key == "method":
            if value not in _LIGHTER.get(settings.method, ()):
                return False
            more = True
        else:
            more |= getattr(settings, key) != value
    return more


def _fullest(e: TrainingEstimate) -> float:
    """The fullest GPU's share of what it may use (capacity less the allocator's reserve)."""
    return max(s.total_bytes / s.usable_bytes for s in e.memory.stages)


def training_advice(est: TrainingEstimate, catalog: Catalog, limit: int = 3) -> list[Advice]:
    """Up to ``limit`` changes that make ``est`` fit, one per kind of change, fastest first and the
    ones that change the job (LoRA, QLoRA) last; empty when it fits or nothing tried helps.

    ZeRO stages are tried only with data-parallel ranks to shard over, combined changes only
    when no single one is enough."""
    settings = est.settings
    if est.fits or settings is None:
        return []
    found: dict[str, tuple[bool, float, Advice]] = {}
    for kind, words, change in CHANGES:
        if kind in found or not _adds(settings, change):
            continue
        if "zero_stage" in change and est.layout.data_parallel < 2:
            continue
        if kind == "combined" and found:
            continue
        try:
            e = estimate_training_for(est.model, est.rig, replace(settings, **change), catalog)
        except RigplanError:
            continue
        if e.fits:
            speed = e.speed.tokens_per_s if e.speed else 0.0
            found[kind] = (kind == "method", -speed, Advice(words, _fullest(e)))
    return [a for *_, a in sorted(found.values(), key=lambda x: x[:2])][:limit]
