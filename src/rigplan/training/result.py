""":class:`TrainingEstimate`: everything rigplan knows about one training configuration on one rig."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..catalog.records import Model
from ..results import Provenance
from ..rig import Rig
from .cost import TrainingCost
from .frameworks import FrameworkProfile
from .memory import TrainingMemory
from .settings import TrainingSettings
from .setup import Layout, TrainingSetup
from .shape import ModelShape
from .speed import Interconnect, TrainingProfile, TrainingSpeed
from .uncertainty import speed_range

__all__ = ["RANGE_MAPE_MULTIPLE", "TrainingEstimate"]

# The speed range: ± twice the leave-one-model-size-out MAPE of the profile (for normally
# distributed errors MAPE ≈ 0.8σ, so this is about ±1.6σ, ~90% of outcomes).
RANGE_MAPE_MULTIPLE = 2


@dataclass(frozen=True, slots=True)
class TrainingEstimate:
    """Everything rigplan knows about one training configuration on one rig."""

    model: Model
    rig: Rig
    shape: ModelShape
    setup: TrainingSetup
    layout: Layout
    interconnect: Interconnect
    memory: TrainingMemory
    speed: TrainingSpeed | None
    speed_unavailable: str | None
    profile: TrainingProfile
    global_batch: int
    tokens: int | None
    cost: TrainingCost
    framework: FrameworkProfile | None = None
    framework_default: bool = True
    #: runs, but slowly or with a caveat (design.md §3, second round)
    warnings: tuple[str, ...] = ()
    provenance: dict[str, Provenance] = field(default_factory=dict)
    #: the options it was estimated with (what :func:`rigplan.training_fit_advice` varies)
    settings: TrainingSettings | None = field(default=None, repr=False, compare=False)

    @property
    def fits(self) -> bool:
        return self.memory.fits

    @property
    def time_to_train_s(self) -> float | None:
        if self.tokens is None or self.speed is None:
            return None
        return self.tokens / self.speed.tokens_per_s

    @property
    def tokens_per_s_range(self) -> tuple[float, float] | None:
        if self.speed is None:
            return None
        if self.framework is None:
            spread = RANGE_MAPE_MULTIPLE * (self.profile.mape or 0.0)
            return self.speed.tokens_per_s * (1 - spread), self.speed.tokens_per_s * (1 + spread)
        lo, hi = speed_range(self.framework, self.shape, self.rig.gpus[0])
        return self.speed.tokens_per_s * (1 + lo), self.speed.tokens_per_s * (1 + hi)

    def to_dict(self) -> dict[str, Any]:
        """Nested JSON (bytes as integers), in the style of :meth:`rigplan.Estimate.to_dict`."""
        s, lay, mem = self.setup, self.layout, self.memory
        lora = None
        if not s.method.trains_base:
            lora = {"rank": s.lora_rank, "targets": s.lora_targets, "parameters": mem.trainable_params}
        return {
            "fits": self.fits,
            "model": self.model.id,
            "rig": self.rig.describe(),
            "method": s.method.value,
            "precision": s.precision.value,
            "optimizer": s.optimizer.value + (" (paged)" if s.paged_optimizer else ""),
            "seq_len": s.seq_len,
            "micro_batch": s.micro_batch,
            "global_batch": self.global_batch,
            "grad_accumulation": s.grad_accumulation,
            "zero_stage": s.zero_stage,
            "hybrid_shard": s.hybrid_shard,
            "activation_checkpointing": s.checkpointing.value,
            "flash_attention": s.flash_attention,
            "offload": s.offload,
            "lora": lora,
            "parallel": _parallel_dict(s, lay),
            "interconnect": self.interconnect.description,
            "parameters": {"total": self.shape.total_params, "trainable": mem.trainable_params},
            "memory": {
                "per_gpu": self._per_gpu_dicts(),
                "peak_gpu_bytes": mem.peak.total_bytes,
                "host_bytes": mem.host_bytes,
            },
            "speed": self._speed_dict(),
            "tokens": self.tokens,
            "time_to_train_s": self.time_to_train_s,
            "cost": {"buy_usd": self.cost.buy_usd, **self.cost.to_dict(self.rig.gpu_count)},
            "warnings": list(self.warnings),
            "provenance": {
                k: {"kind": v.kind, "source": v.source, **({"formula": v.formula} if v.formula else {})}
                for k, v in sorted(self.provenance.items())
            },
        }

    def _per_gpu_dicts(self) -> list[dict[str, Any]]:
        lay, mem = self.layout, self.memory
        per_stage = lay.tensor_parallel * lay.data_parallel
        out = []
        for i, gpu in enumerate(self.rig.all_gpus):
            g = mem.stages[min(i // per_stage, len(mem.stages) - 1)]
            out.append(
                {
                    "gpu": gpu.id,
                    "pipeline_stage": g.stage,
                    "capacity_bytes": g.capacity_bytes,
                    "total_bytes": g.total_bytes,
                    "weights_bytes": g.weights_bytes,
                    "gradients_bytes": g.gradients_bytes,
                    "optimizer_states_bytes": g.optimizer_bytes,
                    "gathered_params_bytes": g.gathered_params_bytes,
                    "activations_bytes": g.activations_bytes,
                    "logits_bytes": g.logits_bytes,
                    "overhead_bytes": g.overhead_bytes,
                    "paged_to_host_bytes": g.paged_to_host_bytes,
                    "fits": g.fits,
                }
            )
        return out

    def _speed_dict(self) -> dict[str, Any]:
        sp, rng = self.speed, self.tokens_per_s_range
        return {
            "tokens_per_s": sp.tokens_per_s if sp else None,
            "tokens_per_s_range": list(rng) if rng else None,
            "tokens_per_s_per_gpu": sp.tokens_per_s_per_gpu if sp else None,
            "mfu": sp.mfu if sp else None,
            "step_time_s": sp.step_time_s if sp else None,
            "tokens_per_step": sp.tokens_per_step if sp else None,
            "breakdown_s": dict(sp.breakdown_s) if sp else None,
            "profile": self.profile.name,
            "framework": self.framework.name if self.framework else None,
            "framework_default": self.framework_default,
            "framework_basis": self.framework.basis if self.framework else None,
            "unavailable_reason": self.speed_unavailable,
        }


def _parallel_dict(s: TrainingSetup, lay: Layout) -> dict[str, Any]:
    return {
        "tensor": lay.tensor_parallel,
        "pipeline": lay.pipeline_parallel,
        "context": lay.context_parallel,
        "expert": lay.expert_parallel,
        "virtual_pipeline": lay.virtual_pipeline,
        "data": lay.data_parallel,
        "sequence_parallel": s.sequence_parallel and lay.tensor_parallel > 1,
    }
