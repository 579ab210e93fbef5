"""``rigplan.estimate_training``: memory, speed, time and cost of training one model on one rig.

The API's edge: it resolves names, checks the options, then calls the pure models
(:mod:`.memory`, :mod:`.speed`) with typed inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import arch
from ..catalog import load_catalog
from ..catalog.records import GPU, Catalog, Model
from ..edge import resolve_model_input, resolve_rig_input
from ..errors import InvalidValueError, UnsupportedError
from ..results import Provenance
from ..rig import Rig
from .cost import TrainingCost, training_cost
from .frameworks import Framework, FrameworkProfile, default_framework, load_framework, parse_framework
from .memory import TrainingMemory, estimate_training_memory
from .options import NO_BF16_ARCHITECTURES, build_setup, positive_tokens
from .profile import load_profile
from .provenance import training_provenance
from .setup import Layout, TrainingSetup, check_layout
from .shape import ModelShape, model_shape
from .speed import Interconnect, TrainingProfile, TrainingSpeed, interconnect_for
from .step import estimate_training_speed
from .uncertainty import bubble_warning, speed_range, speed_warnings

__all__ = ["NO_BF16_ARCHITECTURES", "TrainingEstimate", "build_setup", "estimate_training"]

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


def _global_batch(micro_batch: Any, global_batch: Any, layout: Layout) -> tuple[int, int]:
    """(sequences per optimizer step, sequences per micro-batch step over the DP ranks)."""
    if isinstance(micro_batch, int) and not isinstance(micro_batch, bool) and micro_batch >= 1:
        per_step = micro_batch * layout.data_parallel
    else:
        per_step = 1
    if global_batch is None:
        global_batch = per_step
    if isinstance(global_batch, bool) or not isinstance(global_batch, int) or global_batch < 1:
        raise InvalidValueError("global_batch", f"must be a whole number ≥ 1, got {global_batch!r}")
    if global_batch % per_step:
        raise InvalidValueError(
            "global_batch",
            f"{global_batch} is not a multiple of micro_batch × data-parallel ranks = {per_step}",
        )
    return global_batch, per_step


def _resolve_rig(model: Any, rig: Any, network: str | None, catalog: Catalog) -> tuple[Model, Rig]:
    mdl = resolve_model_input(model, catalog)
    arch.check_supported(mdl)
    the_rig = resolve_rig_input(rig, catalog, network)
    if the_rig.is_mixed:
        raise UnsupportedError("training estimates need identical GPUs; the rig mixes " + the_rig.describe())
    return mdl, the_rig


def _framework(framework: str | None, layout: Layout, gpus: int) -> Framework:
    fw = default_framework(layout) if framework is None else parse_framework(framework)
    if fw is Framework.UNSLOTH and gpus > 1:
        raise UnsupportedError("framework unsloth: open-source Unsloth trains on one GPU; use fsdp or deepspeed")
    return fw


def _speed(
    shape: ModelShape, setup: TrainingSetup, layout: Layout, gpu: GPU, link: Interconnect, fw: FrameworkProfile
) -> tuple[TrainingSpeed | None, str | None, tuple[str, ...]]:
    """(speed, why there is none, warnings)."""
    try:
        speed = estimate_training_speed(shape, setup, layout, gpu, link, load_profile(), fw)
    except UnsupportedError as exc:
        return None, str(exc), ()
    warnings = speed_warnings(fw, shape, gpu, setup.precision) + bubble_warning(speed.breakdown_s, speed.step_time_s)
    return speed, None, warnings


def estimate_training(
    model: str | Mapping[str, Any] | Model,
    rig: str | Rig,
    *,
    method: str = "full",
    seq_len: int = 2048,
    micro_batch: int = 1,
    global_batch: int | None = None,
    zero_stage: int | str = 0,
    activation_checkpointing: bool | str = False,
    precision: str = "bf16",
    optimizer: str = "adamw",
    lora_rank: int = 16,
    lora_targets: str = "all-linear",
    offload: str | None = None,
    tensor_parallel: int = 1,
    pipeline_parallel: int = 1,
    tokens: float | None = None,
    flash_attention: bool = True,
    sequence_parallel: bool = True,
    paged_optimizer: bool | None = None,
    network: str | None = None,
    force: bool = False,
    catalog: Catalog | None = None,
    framework: str | None = None,
    context_parallel: int = 1,
    expert_parallel: int = 1,
    virtual_pipeline: int = 1,
    link: str | None = None,
    prices: Mapping[str, float] | None = None,
    rental: Mapping[str, float] | None = None,
    kwh_price: float | None = None,
) -> TrainingEstimate:
    """Memory per GPU, tokens/s, time to train and cost of training ``model`` on ``rig``.

    >>> e = estimate_training("llama-3-8b", "8x h100-sxm", zero_stage=3, activation_checkpointing=True)
    >>> e.fits, e.layout.data_parallel
    (True, 8)

    Args:
        model: catalogue id, a path or Hugging Face repo id, or a dict of architecture fields
            (hidden_size, num_layers, num_heads, num_kv_heads, ffn_size, vocab_size).
        rig: rig string ("8x h100-sxm", "16 nodes x 8x h100-sxm") or "local"; identical GPUs.
        method: "full" | "lora" | "qlora" | "pretrain".
        global_batch: sequences per optimizer step; None = micro_batch × data-parallel ranks.
        zero_stage: 0–3, or "fsdp-full" (3), "fsdp-grad-op" (2), "fsdp-hybrid" (3 in a node).
        activation_checkpointing: False, "selective" or True (full).
        offload: None or "cpu" (optimizer states, and gradients/weights at ZeRO-2/3, in host RAM).
        tokens: training tokens, for the time to train.
        paged_optimizer: None = paged for QLoRA (Dettmers et al. 2023), else not.
        framework: fsdp (torchtitan), megatron, deepspeed, hf-trainer or unsloth; None = megatron
            when the layout uses TP, PP, CP or EP, else fsdp (named in the result).
        context_parallel, expert_parallel, virtual_pipeline: Megatron-style CP, EP (MoE) and
            interleaved pipeline chunks per rank.
        link: "nvlink" | "pcie3" | "pcie4" | "pcie5" between the GPUs of a node (None: the best
            the GPUs support), as for :func:`rigplan.estimate`.
        prices, rental, kwh_price: the user's GPU prices ($), on-demand rent ($/GPU-hour) and
            electricity ($/kWh) over the catalogue's (the CLI reads them from config.toml).

    Raises:
        RigplanError: unknown names, impossible values, divisibility rules broken, unsupported
            combinations (each message names the field).
    """
    catalog = catalog or load_catalog()
    mdl, the_rig = _resolve_rig(model, rig, network, catalog)
    gpu = the_rig.gpus[0]
    shape = model_shape(mdl)
    layout = check_layout(
        shape,
        the_rig.gpu_count,
        the_rig.gpus_per_node,
        tensor_parallel,
        pipeline_parallel,
        context_parallel=context_parallel,
        expert_parallel=expert_parallel,
        virtual_pipeline=virtual_pipeline,
    )
    fw = _framework(framework, layout, the_rig.gpu_count)
    global_batch, per_step = _global_batch(micro_batch, global_batch, layout)
    setup = build_setup(
        shape,
        mdl,
        gpu,
        method=method,
        seq_len=seq_len,
        micro_batch=micro_batch,
        zero_stage=zero_stage,
        activation_checkpointing=activation_checkpointing,
        precision=precision,
        optimizer=optimizer,
        lora_rank=lora_rank,
        lora_targets=lora_targets,
        offload=offload,
        grad_accumulation=global_batch // per_step,
        pipeline_parallel=layout.pipeline_parallel,
        flash_attention=flash_attention,
        sequence_parallel=sequence_parallel,
        paged_optimizer=paged_optimizer,
        force=force,
        framework=fw,
    )
    n_tokens = positive_tokens(tokens)
    connection = interconnect_for(the_rig.gpus, the_rig.network, the_rig.nodes, link=link)
    fprofile = load_framework(fw)
    speed, reason, warnings = _speed(shape, setup, layout, gpu, connection, fprofile)
    time_s = n_tokens / speed.tokens_per_s if (n_tokens and speed) else None
    cost = training_cost(the_rig, catalog, time_s, prices=prices, rental=rental, usd_per_kwh=kwh_price)
    profile = load_profile()
    return TrainingEstimate(
        model=mdl,
        rig=the_rig,
        shape=shape,
        setup=setup,
        layout=layout,
        interconnect=connection,
        memory=estimate_training_memory(shape, setup, layout, gpu),
        speed=speed,
        speed_unavailable=reason,
        profile=profile,
        global_batch=global_batch,
        tokens=n_tokens,
        cost=cost,
        framework=fprofile,
        framework_default=framework is None,
        warnings=warnings,
        provenance=training_provenance(mdl, the_rig, setup, profile, speed, cost),
    )
