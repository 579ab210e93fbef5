"""Training options as typed values: what the user asked for, checked and normalised.

The estimating functions (:mod:`.memory`, :mod:`.speed`) take these records and never see raw
strings; :func:`normalise` turns the public API's keywords into them and refuses what cannot
be trained (every message names the field and the allowed values).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..errors import InvalidValueError
from .shape import LORA_TARGETS, ModelShape


class Method(StrEnum):
    """full: every weight trains; lora: frozen 16-bit base + adapters; qlora: frozen NF4 base +
    adapters (Dettmers et al. 2023); pretrain: full training from scratch (as full)."""

    FULL = "full"
    LORA = "lora"
    QLORA = "qlora"
    PRETRAIN = "pretrain"

    @property
    def trains_base(self) -> bool:
        return self in (Method.FULL, Method.PRETRAIN)


class Precision(StrEnum):
    """Compute precision of the linear layers.  fp8: per-tensor scaling (Transformer Engine delayed
    or current scaling, torchao float8); mxfp8: 32-element block scaling (Blackwell); fp4: NVFP4
    (Blackwell).  Attention, norms and the optimizer stay in bf16/fp32 in every case."""

    BF16 = "bf16"
    F16 = "f16"
    FP8 = "fp8"
    MXFP8 = "mxfp8"
    FP4 = "fp4"
    F32 = "f32"

    @property
    def low_bit(self) -> bool:
        return self in (Precision.FP8, Precision.MXFP8, Precision.FP4)


class Optimizer(StrEnum):
    ADAMW = "adamw"
    ADAMW_8BIT = "adamw-8bit"
    SGD = "sgd"


class Checkpointing(StrEnum):
    """Activation recomputation (Korthikanti et al. 2022): none, selective (attention core), full."""

    NONE = "none"
    SELECTIVE = "selective"
    FULL = "full"


# ZeRO stage aliases.  FSDP's ShardingStrategy maps onto ZeRO: FULL_SHARD ≈ ZeRO-3,
# SHARD_GRAD_OP ≈ ZeRO-2 (torch.distributed.fsdp.api.ShardingStrategy docstrings; perf-model.md
# §2.2 [S:FSDP-API]); HYBRID_SHARD = FULL_SHARD inside a node, replicas across nodes.
ZERO_ALIASES: dict[str, tuple[int, bool]] = {
    "0": (0, False),
    "ddp": (0, False),
    "1": (1, False),
    "2": (2, False),
    "3": (3, False),
    "zero-1": (1, False),
    "zero-2": (2, False),
    "zero-3": (3, False),
    "fsdp-full": (3, False),
    "fsdp-grad-op": (2, False),
    "fsdp-hybrid": (3, True),
}
OFFLOADS = ("cpu",)
#: LoRA adapters' rank and target layers unless told otherwise.
DEFAULT_LORA_RANK = 16
DEFAULT_LORA_TARGETS = "all-linear"


@dataclass(frozen=True, slots=True)
class TrainingSetup:
    """One training configuration (per GPU where it says so)."""

    method: Method
    precision: Precision
    optimizer: Optimizer
    seq_len: int
    micro_batch: int  # sequences per GPU per forward/backward
    grad_accumulation: int  # micro-batches per optimizer step (per data-parallel rank)
    zero_stage: int
    hybrid_shard: bool
    checkpointing: Checkpointing
    offload: str | None
    lora_rank: int
    lora_targets: str
    flash_attention: bool = True
    sequence_parallel: bool = True
    paged_optimizer: bool = False
    # MoE routing: dropless (Megatron-Core's default, every token reaches its experts; the token
    # counts go device→host each layer) or token-drop at a fixed capacity (no such sync).
    moe_dropless: bool = True

    @property
    def micro_batch_tokens(self) -> int:
        return self.micro_batch * self.seq_len


@dataclass(frozen=True, slots=True)
class Layout:
    """How the GPUs are used: tensor × pipeline × context × data parallel, where nodes begin,
    experts split over ``expert_parallel`` ranks (carved from the TP × CP × DP ranks of a stage,
    as Megatron-Core does) and ``virtual_pipeline`` model chunks per pipeline rank."""

    tensor_parallel: int
    pipeline_parallel: int
    data_parallel: int
    gpus_per_node: int
    nodes: int
    context_parallel: int = 1
    expert_parallel: int = 1
    virtual_pipeline: int = 1

    @property
    def gpus(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel * self.context_parallel * self.data_parallel

    @property
    def model_parallel(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel * self.context_parallel


def _choice(field: str, value: Any, enum: type[StrEnum], aliases: dict[str, str] | None = None) -> Any:
    text = str(value).strip().lower()
    text = (aliases or {}).get(text, text)
    try:
        return enum(text)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise InvalidValueError(field, f"must be one of {allowed}, got {value!r}") from None


def _whole(field: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidValueError(field, f"must be a whole number ≥ {minimum}, got {value!r}")
    return value


def parse_method(value: Any) -> Method:
    return _choice("method", value, Method, {"finetune": "full", "fine-tune": "full"})  # type: ignore[no-any-return]


def parse_precision(value: Any) -> Precision:
    aliases = {
        "fp16": "f16",
        "fp32": "f32",
        "bfloat16": "bf16",
        "fp8-cs": "fp8",
        "fp8-delayed": "fp8",
        "fp8-current": "fp8",
        "float8": "fp8",
        "fp8-mx": "mxfp8",
        "nvfp4": "fp4",
    }
    return _choice("precision", value, Precision, aliases)  # type: ignore[no-any-return]


def parse_optimizer(value: Any) -> Optimizer:
    aliases = {
        "adam": "adamw",
        "adam-8bit": "adamw-8bit",
        "adamw8bit": "adamw-8bit",
        "8bit": "adamw-8bit",
        "paged-adamw": "adamw",
        "paged-adamw-8bit": "adamw-8bit",
    }
    return _choice("optimizer", value, Optimizer, aliases)  # type: ignore[no-any-return]


def parse_zero(value: Any) -> tuple[int, bool]:
    """``0..3`` or an alias → (stage, hybrid shard)."""
    key = str(value).strip().lower()
    if isinstance(value, bool) or key not in ZERO_ALIASES:
        names = ", ".join(k for k in ZERO_ALIASES if not k.isdigit())
        raise InvalidValueError("zero_stage", f"must be 0–3 or one of {names}, got {value!r}")
    return ZERO_ALIASES[key]


def parse_checkpointing(value: Any) -> Checkpointing:
    if value is True:
        return Checkpointing.FULL
    if value is False or value is None:
        return Checkpointing.NONE
    return _choice(  # type: ignore[no-any-return]
        "activation_checkpointing", value, Checkpointing, {"true": "full", "false": "none", "off": "none", "on": "full"}
    )


def check_layout(
    shape: ModelShape,
    gpus: int,
    gpus_per_node: int,
    tensor_parallel: int,
    pipeline_parallel: int,
    *,
    context_parallel: int = 1,
    expert_parallel: int = 1,
    virtual_pipeline: int = 1,
) -> Layout:
    """Divisibility rules of Megatron-style 4D parallelism (+ experts).

    TP divides the attention heads and the KV heads (Megatron-LM requires both:
    ``num_attention_heads % tp == 0`` and ``num_query_groups % tp == 0``); PP needs at least one
    layer per stage but not equal stages (Megatron's ``decoder_first/last_pipeline_num_layers``
    take the remainder; :func:`stage_layers`); TP × PP × CP divides the GPU count, the rest is
    data parallel; EP divides the experts and the TP × CP × DP ranks of a stage.

    Raises:
        InvalidValueError: a rule is broken (the message says which and how to fix it).
    """
    tp = _whole("tensor_parallel", tensor_parallel)
    pp = _whole("pipeline_parallel", pipeline_parallel)
    cp = _whole("context_parallel", context_parallel)
    ep = _whole("expert_parallel", expert_parallel)
    vp = _whole("virtual_pipeline", virtual_pipeline)
    if shape.num_heads % tp or shape.num_kv_heads % tp:
        raise InvalidValueError(
            "tensor_parallel",
            f"{tp} must divide the {shape.num_heads} attention heads and {shape.num_kv_heads} KV heads",
        )
    if pp * vp > shape.num_layers:
        raise InvalidValueError(
            "pipeline_parallel", f"{pp} stages × {vp} virtual chunks exceed the {shape.num_layers} layers"
        )
    if gpus % (tp * pp * cp):
        raise InvalidValueError(
            "tensor_parallel",
            f"TP × PP × CP = {tp * pp * cp} must divide the rig's {gpus} GPUs (the rest is data parallel)",
        )
    if tp > gpus_per_node and tp % gpus_per_node:
        raise InvalidValueError(
            "tensor_parallel", f"{tp} spans nodes of {gpus_per_node} GPUs unevenly; use a multiple of {gpus_per_node}"
        )
    if tp < gpus_per_node and gpus_per_node % tp:
        raise InvalidValueError("tensor_parallel", f"{tp} must divide the {gpus_per_node} GPUs of a node")
    if ep > 1:
        if shape.num_experts <= 1:
            raise InvalidValueError("expert_parallel", f"{shape.model_id} has no experts to split")
        if shape.num_experts % ep or (gpus // pp) % ep:
            raise InvalidValueError(
                "expert_parallel",
                f"{ep} must divide the {shape.num_experts} experts and the {gpus // pp} GPUs of a pipeline stage",
            )
    dp = gpus // (tp * pp * cp)
    return Layout(tp, pp, dp, gpus_per_node, max(1, gpus // gpus_per_node), cp, ep, vp)


@functools.lru_cache(maxsize=1024)
def stage_layers(num_layers: int, pp: int) -> tuple[int, ...]:
    """Layers of each pipeline stage: equal stages where they divide, else the remainder spread
    one each over the first and last stages first (they also hold the embedding and the head, so
    Megatron users give them fewer layers; here the middle stages take the extra layers).

    >>> stage_layers(126, 8)
    (15, 16, 16, 16, 16, 16, 16, 15)
    >>> stage_layers(32, 4)
    (8, 8, 8, 8)
    """
    base, extra = divmod(num_layers, pp)
    layers = [base] * pp
    # Give the extra layers to the middle stages, outermost last.
    order = sorted(range(pp), key=lambda s: min(s, pp - 1 - s), reverse=True)
    for s in order[:extra]:
        layers[s] += 1
    return tuple(layers)


def lora_target_check(targets: str) -> str:
    if targets not in LORA_TARGETS:
        raise InvalidValueError("lora_targets", f"must be one of {', '.join(LORA_TARGETS)}, got {targets!r}")
    return targets
