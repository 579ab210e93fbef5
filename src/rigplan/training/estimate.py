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
from ..catalog.query import best_price
from ..catalog.records import GPU, Catalog, Model, Price
from ..edge import resolve_model_input, resolve_rig_input
from ..errors import InvalidValueError, UnsupportedError
from ..results import Provenance
from ..rig import Rig
from .memory import TrainingMemory, estimate_training_memory
from .profile import load_profile
from .setup import (
    OFFLOADS,
    Checkpointing,
    Layout,
    Method,
    Precision,
    TrainingSetup,
    check_layout,
    lora_target_check,
    parse_checkpointing,
    parse_method,
    parse_optimizer,
    parse_precision,
    parse_zero,
)
from .shape import ModelShape, model_shape
from .speed import Interconnect, TrainingProfile, TrainingSpeed, estimate_training_speed, interconnect_for

# bf16 arithmetic arrived with Ampere (CUDA compute capability 8.0); Pascal, Volta and Turing
# lack it (torch.cuda.is_bf16_supported() is False there).
NO_BF16_ARCHITECTURES = frozenset({"pascal", "volta", "turing"})

# The speed range: ± twice the leave-one-model-size-out MAPE of the profile (for normally
# distributed errors MAPE ≈ 0.8σ, so this is about ±1.6σ, ~90% of outcomes).
RANGE_MAPE_MULTIPLE = 2
SECONDS_PER_HOUR = 3600
JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True, slots=True)
class TrainingCost:
    buy_usd: float | None  # GPUs only, at the catalogue's default price
    prices: tuple[Price, ...]
    missing_prices: tuple[str, ...]  # GPU ids with no price in the catalogue
    energy_kwh: float | None  # GPU board power × time (an upper bound on the GPUs' draw)


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
    provenance: dict[str, Provenance] = field(default_factory=dict)
    #: runs, but slowly or with a caveat (design.md §3, second round)
    warnings: tuple[str, ...] = ()

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
        spread = RANGE_MAPE_MULTIPLE * (self.profile.mape or 0.0)
        return self.speed.tokens_per_s * (1 - spread), self.speed.tokens_per_s * (1 + spread)

    def to_dict(self) -> dict[str, Any]:
        """Nested JSON (bytes as integers), in the style of :meth:`rigplan.Estimate.to_dict`."""
        s, lay, mem = self.setup, self.layout, self.memory
        per_stage = lay.tensor_parallel * lay.data_parallel
        per_gpu = []
        for i, gpu in enumerate(self.rig.all_gpus):
            g = mem.stages[min(i // per_stage, len(mem.stages) - 1)]
            per_gpu.append(
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
        sp = self.speed
        rng = self.tokens_per_s_range
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
            "parallel": {
                "tensor": lay.tensor_parallel,
                "pipeline": lay.pipeline_parallel,
                "data": lay.data_parallel,
                "sequence_parallel": s.sequence_parallel and lay.tensor_parallel > 1,
            },
            "interconnect": self.interconnect.description,
            "parameters": {"total": self.shape.total_params, "trainable": mem.trainable_params},
            "memory": {
                "per_gpu": per_gpu,
                "peak_gpu_bytes": mem.peak.total_bytes,
                "host_bytes": mem.host_bytes,
            },
            "speed": {
                "tokens_per_s": sp.tokens_per_s if sp else None,
                "tokens_per_s_range": list(rng) if rng else None,
                "tokens_per_s_per_gpu": sp.tokens_per_s_per_gpu if sp else None,
                "mfu": sp.mfu if sp else None,
                "step_time_s": sp.step_time_s if sp else None,
                "tokens_per_step": sp.tokens_per_step if sp else None,
                "breakdown_s": dict(sp.breakdown_s) if sp else None,
                "profile": self.profile.name,
                "unavailable_reason": self.speed_unavailable,
            },
            "tokens": self.tokens,
            "time_to_train_s": self.time_to_train_s,
            "cost": {
                "buy_usd": self.cost.buy_usd,
                "buy_note": _price_note(self.cost),
                "rent_usd": None,
                "rent_note": "no sourced hourly price in the catalogue; rent not estimated",
                "energy_kwh": self.cost.energy_kwh,
            },
            "warnings": list(self.warnings),
            "provenance": {
                k: {"kind": v.kind, "source": v.source, **({"formula": v.formula} if v.formula else {})}
                for k, v in sorted(self.provenance.items())
            },
        }


def _price_note(cost: TrainingCost) -> str:
    if cost.missing_prices:
        return f"price unknown for {', '.join(cost.missing_prices)}"
    kinds = sorted({f"{p.gpu} {p.kind} ${p.usd:,.0f} ({p.as_of})" for p in cost.prices})
    return "GPUs only: " + "; ".join(kinds)


def training_cost(rig: Rig, catalog: Catalog, time_s: float | None) -> TrainingCost:
    """Cost to buy the rig's GPUs at the catalogue's default prices, and the GPUs' energy."""
    prices: list[Price] = []
    missing: list[str] = []
    total = 0.0
    for gpu in rig.all_gpus:
        p = best_price(catalog, gpu.id)
        if p is None:
            if gpu.id not in missing:
                missing.append(gpu.id)
            continue
        if p not in prices:
            prices.append(p)
        total += p.usd_per_gpu  # an 8-GPU board or server price spread over its GPUs
    energy = None
    if time_s is not None:
        energy = sum(g.board_power_w for g in rig.all_gpus) * time_s / JOULES_PER_KWH
    return TrainingCost(None if missing else total, tuple(prices), tuple(missing), energy)


def _positive_tokens(tokens: Any) -> int | None:
    if tokens is None:
        return None
    if isinstance(tokens, bool) or not isinstance(tokens, int | float) or not tokens > 0 or tokens != tokens:
        raise InvalidValueError("tokens", f"must be a positive number of tokens, got {tokens!r}")
    if tokens == float("inf"):
        raise InvalidValueError("tokens", "must be finite")
    return int(tokens)


def build_setup(
    shape: ModelShape,
    model: Model,
    gpu: GPU,
    *,
    method: Any,
    seq_len: Any,
    micro_batch: Any,
    zero_stage: Any,
    activation_checkpointing: Any,
    precision: Any,
    optimizer: Any,
    lora_rank: Any,
    lora_targets: Any,
    offload: Any,
    grad_accumulation: int,
    pipeline_parallel: int,
    flash_attention: bool,
    sequence_parallel: bool,
    paged_optimizer: bool | None,
    force: bool,
) -> TrainingSetup:
    """Check every option and build the :class:`TrainingSetup` (raises with the field named)."""
    m = parse_method(method)
    prec = parse_precision(precision)
    opt = parse_optimizer(optimizer)
    stage, hybrid = parse_zero(zero_stage)
    ckpt = parse_checkpointing(activation_checkpointing)
    for name, value in (("seq_len", seq_len), ("micro_batch", micro_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidValueError(name, f"must be a whole number ≥ 1, got {value!r}")
    if seq_len > model.max_context and not force:
        raise InvalidValueError(
            "seq_len", f"{seq_len} exceeds {model.id}'s maximum of {model.max_context} tokens (force=True to allow)"
        )
    if offload is not None and offload not in OFFLOADS:
        raise InvalidValueError("offload", f"must be None or one of {', '.join(OFFLOADS)}, got {offload!r}")
    if offload and stage == 0:
        raise InvalidValueError("offload", "CPU offload needs zero_stage ≥ 1 (ZeRO-Offload / FSDP CPUOffload)")
    if pipeline_parallel > 1 and stage >= 2:
        raise UnsupportedError(
            "zero_stage: ZeRO-2/3 shard gradients that pipeline parallelism accumulates across micro-batches; "
            "DeepSpeed and Megatron allow only ZeRO-1 with pipeline_parallel > 1"
        )
    if not m.trains_base:
        if isinstance(lora_rank, bool) or not isinstance(lora_rank, int) or lora_rank < 1:
            raise InvalidValueError("lora_rank", f"must be a whole number ≥ 1, got {lora_rank!r}")
        lora_target_check(lora_targets)
        if min(shape.hidden_size, shape.ffn_activation_width) < lora_rank:
            raise InvalidValueError("lora_rank", f"{lora_rank} is larger than the layers it adapts")
    if m is Method.QLORA:
        if prec not in (Precision.BF16, Precision.F16):
            raise UnsupportedError("precision: QLoRA computes in bf16 or f16 over the NF4 base (bitsandbytes)")
        if gpu.vendor not in ("nvidia", "amd"):
            raise UnsupportedError(f"method qlora: bitsandbytes needs CUDA or ROCm; {gpu.id} has neither")
    if prec is Precision.BF16 and gpu.architecture in NO_BF16_ARCHITECTURES:
        raise UnsupportedError(f"precision bf16: {gpu.id} ({gpu.architecture}) has no bf16 support; use f16 or f32")
    if prec is Precision.FP8 and gpu.fp8_tensor_tflops is None:
        raise UnsupportedError(f"precision fp8: {gpu.id} has no FP8 tensor cores (Ada, Hopper and later have)")
    paged = (m is Method.QLORA) if paged_optimizer is None else bool(paged_optimizer)
    return TrainingSetup(
        method=m,
        precision=prec,
        optimizer=opt,
        seq_len=seq_len,
        micro_batch=micro_batch,
        grad_accumulation=grad_accumulation,
        zero_stage=stage,
        hybrid_shard=hybrid,
        checkpointing=ckpt,
        offload=offload,
        lora_rank=lora_rank if not m.trains_base else 0,
        lora_targets=lora_targets,
        flash_attention=bool(flash_attention),
        sequence_parallel=bool(sequence_parallel),
        paged_optimizer=paged,
    )


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

    Raises:
        RigplanError: unknown names, impossible values, divisibility rules broken, unsupported
            combinations (each message names the field).
    """
    catalog = catalog or load_catalog()
    mdl = resolve_model_input(model, catalog)
    arch.check_supported(mdl)
    the_rig = resolve_rig_input(rig, catalog, network)
    if the_rig.is_mixed:
        raise UnsupportedError("training estimates need identical GPUs; the rig mixes " + the_rig.describe())
    gpu = the_rig.gpus[0]
    shape = model_shape(mdl)
    layout = check_layout(shape, the_rig.gpu_count, the_rig.gpus_per_node, tensor_parallel, pipeline_parallel)
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
    )
    n_tokens = _positive_tokens(tokens)
    memory = estimate_training_memory(shape, setup, layout, gpu)
    link = interconnect_for(the_rig.gpus, the_rig.network, the_rig.nodes)
    profile = load_profile()
    speed: TrainingSpeed | None = None
    reason = None
    try:
        speed = estimate_training_speed(shape, setup, layout, gpu, link, profile)
    except UnsupportedError as exc:
        reason = str(exc)
    time_s = n_tokens / speed.tokens_per_s if (n_tokens and speed) else None
    cost = training_cost(the_rig, catalog, time_s)
    return TrainingEstimate(
        model=mdl,
        rig=the_rig,
        shape=shape,
        setup=setup,
        layout=layout,
        interconnect=link,
        memory=memory,
        speed=speed,
        speed_unavailable=reason,
        profile=profile,
        global_batch=global_batch,
        tokens=n_tokens,
        cost=cost,
        provenance=_provenance(mdl, the_rig, setup, profile, speed, cost),
    )


def _provenance(
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
    if cost.prices:
        prov["cost.buy_usd"] = Provenance("catalogue", "; ".join(sorted({p.source for p in cost.prices})))
    return prov
