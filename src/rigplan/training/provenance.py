"""Where each number of a :class:`~.estimate.TrainingEstimate` comes from (its ``provenance``)."""

from __future__ import annotations

from ..catalog.records import Model
from ..results import Provenance
from ..rig import Rig
from .cost import TrainingCost
from .setup import Checkpointing, TrainingSetup
from .speed import TrainingProfile, TrainingSpeed


def training_provenance(
    model: Model,
    rig: Rig,
    setup: TrainingSetup,
    profile: TrainingProfile,
    speed: TrainingSpeed | None,
    cost: TrainingCost,
) -> dict[str, Provenance]:
    gpu_sources = "; ".join(sorted({f"{g.id}: {g.source} (as of {g.as_of})" for g in rig.gpus}))
    ckpt = {
        Checkpointing.NONE: "s·b·(4h + 2(q + 2kv) + FFN rows)/t + scores",
        Checkpointing.SELECTIVE: "as none without the attention scores",
        Checkpointing.FULL: "2·s·b·h per layer + one layer live",
    }[setup.checkpointing]
    prov = {
        "parameters.total": Provenance("formula", f"{model.id}: {model.source}", "Σ tensor sizes (rigplan.arch)"),
        "memory.per_gpu.capacity_bytes": Provenance("catalogue", gpu_sources),
        "memory.per_gpu.weights_bytes": Provenance(
            "formula",
            "ZeRO paper §3.1, §5 (arXiv:1910.02054); QLoRA NF4 + double quant (arXiv:2305.14314)",
            "Ψ/(TP·PP) × bytes (÷ N_d at ZeRO-3)",
        ),
        "memory.per_gpu.gradients_bytes": Provenance(
            "formula", "ZeRO paper §3.1", "Ψ_trained × 2 B (÷ N_d at ZeRO-2+)"
        ),
        "memory.per_gpu.optimizer_states_bytes": Provenance(
            "formula",
            "ZeRO paper (K = 12); Transformer Math 101 (8-bit Adam 6, SGD 8)",
            "Ψ_trained × K (÷ N_d at ZeRO-1+)",
        ),
        "memory.per_gpu.activations_bytes": Provenance(
            "formula",
            "Korthikanti et al. 2022 (arXiv:2205.05198) Table 2, terms per architecture",
            ckpt,
        ),
        "memory.per_gpu.logits_bytes": Provenance(
            "formula", "vram.asmirnov.xyz (perf-model.md §1.4)", "b·s·V·8 B / TP"
        ),
        "memory.per_gpu.overhead_bytes": Provenance("estimate", "CUDA context + NCCL buffers (memory/buffers.py)"),
    }
    if speed is not None:
        prov["speed.tokens_per_s"] = Provenance(
            "estimate",
            f"profile {profile.name}: fitted to {profile.rows} llm-foundry/torchtitan rows, leave-one-size-out "
            f"MAPE {profile.mape:.1%}"
            if profile.mape is not None
            else profile.name,
            speed.derivation,
        )
        prov["speed.mfu"] = Provenance("formula", "PaLM App. B", "(6N + 12·L·d·s) × tokens/s per GPU / dense BF16 peak")
    priced = sorted({f"{i.item}: {i.source}" + (f" ({i.as_of})" if i.as_of else "") for i in cost.machine_items})
    if priced:
        prov["cost.machine_usd"] = Provenance("catalogue", "; ".join(priced))
    if cost.rent:
        prov["cost.rent"] = Provenance("catalogue", "; ".join(f"{q.tier}: {q.source} ({q.as_of})" for q in cost.rent))
    return prov
