"""What :func:`~.planner.plan_training` returns: one rig's option and the ranked plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..catalog.records import Model
from ..rig import Rig
from .cost import TrainingCost
from .memory import TrainingMemory
from .setup import Layout, Method, TrainingSetup
from .speed import Interconnect, TrainingSpeed


@dataclass(frozen=True, slots=True)
class TrainingOption:
    """One rig with its fastest layout that fits."""

    rig: Rig
    layout: Layout
    setup: TrainingSetup
    memory: TrainingMemory
    speed: TrainingSpeed
    interconnect: Interconnect
    time_to_train_s: float
    cost: TrainingCost
    pareto: bool = False
    why: tuple[str, ...] = ()
    framework: str = "fsdp"

    @property
    def buy_usd(self) -> float | None:
        return self.cost.buy_usd

    @property
    def rent_usd(self) -> float | None:
        return self.cost.rent_usd("on-demand", self.rig.gpu_count)

    def to_dict(self) -> dict[str, Any]:
        s, lay, peak = self.setup, self.layout, self.memory.peak
        return {
            "rig": self.rig.describe(),
            "gpu": self.rig.gpus[0].id,
            "gpu_count": self.rig.gpu_count,
            "nodes": self.rig.nodes,
            "tensor_parallel": lay.tensor_parallel,
            "pipeline_parallel": lay.pipeline_parallel,
            "data_parallel": lay.data_parallel,
            "precision": s.precision.value,
            "zero_stage": s.zero_stage,
            "micro_batch": s.micro_batch,
            "grad_accumulation": s.grad_accumulation,
            "activation_checkpointing": s.checkpointing.value,
            "offload": s.offload,
            "interconnect": self.interconnect.description,
            "peak_gpu_bytes": peak.total_bytes,
            "capacity_bytes": peak.capacity_bytes,
            "host_bytes": self.memory.host_bytes,
            "tokens_per_s": self.speed.tokens_per_s,
            "tokens_per_s_per_gpu": self.speed.tokens_per_s_per_gpu,
            "mfu": self.speed.mfu,
            "time_to_train_s": self.time_to_train_s,
            "buy_usd": self.cost.buy_usd,
            "price_note": None if not self.cost.missing_prices else "price unknown",
            "unpriced": list(self.cost.unpriced),
            "rent_on_demand_usd": self.rent_usd,
            "electricity_usd": self.cost.electricity_usd,
            "energy_kwh": self.cost.energy_kwh,
            "framework": self.framework,
            "pareto": self.pareto,
            "why": list(self.why),
        }


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    model: Model
    method: Method
    tokens: int
    seq_len: int
    global_batch: int
    objective: str
    options: tuple[TrainingOption, ...]
    rigs_considered: int
    notes: tuple[str, ...] = ()
    constraints: dict[str, Any] = field(default_factory=dict)
    profile: str = ""
    #: runs, but slowly or with a caveat (design.md §3, second round)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.id,
            "task": self.method.value,
            "tokens": self.tokens,
            "seq_len": self.seq_len,
            "global_batch": self.global_batch,
            "objective": self.objective,
            "constraints": dict(self.constraints),
            "rigs_considered": self.rigs_considered,
            "options": [o.to_dict() for o in self.options],
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "speed_profile": self.profile,
            "rent": "renting the same GPUs on demand (catalog/data/rental.toml) for the run",
        }
