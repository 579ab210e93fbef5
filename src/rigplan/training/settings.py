"""The options of one training estimate, as one record: :class:`TrainingSettings`.

:func:`rigplan.estimate_training` (the edge) builds it from its keyword arguments;
:func:`~.estimate.estimate_training_for` (pure, over resolved records) reads it, so
``rigplan.core.evaluate_training`` can call the training model without any name resolution.
Values are checked where they are used (:mod:`.options`, :mod:`.setup`), each error naming its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..errors import InvalidValueError, closest
from .setup import DEFAULT_LORA_RANK, DEFAULT_LORA_TARGETS


@dataclass(frozen=True, slots=True)
class TrainingSettings:
    """Every option of :func:`rigplan.estimate_training` except the model, rig, network and catalogue.

    The defaults are :func:`rigplan.estimate_training`'s; each field's comment says what it means.
    """

    #: "full" | "lora" | "qlora" | "pretrain".
    method: str = "full"
    #: tokens per sequence.
    seq_len: int = 2048
    #: sequences per GPU per forward/backward pass.
    micro_batch: int = 1
    #: sequences per optimizer step; None = micro_batch × data-parallel ranks.
    global_batch: int | None = None
    #: 0–3, or "fsdp-full" (3), "fsdp-grad-op" (2), "fsdp-hybrid" (3 in a node).
    zero_stage: int | str = 0
    #: False, "selective" or True (full).
    activation_checkpointing: bool | str = False
    #: bf16, f16, f32, fp8, mxfp8 or fp4 (:class:`~.setup.Precision`).
    precision: str = "bf16"
    #: adamw, adamw-8bit or sgd (:class:`~.setup.Optimizer`).
    optimizer: str = "adamw"
    #: LoRA / QLoRA adapter rank.
    lora_rank: int = DEFAULT_LORA_RANK
    #: which linear layers the adapters wrap.
    lora_targets: str = DEFAULT_LORA_TARGETS
    #: None or "cpu" (optimizer states, and gradients/weights at ZeRO-2/3, in host RAM).
    offload: str | None = None
    #: tensor-parallel ranks (within a node).
    tensor_parallel: int = 1
    #: pipeline stages (uneven first/last stages allowed).
    pipeline_parallel: int = 1
    #: training tokens, for the time to train.
    tokens: float | None = None
    #: FlashAttention (no attention-score matrix in memory).
    flash_attention: bool = True
    #: Megatron sequence parallelism with TP > 1.
    sequence_parallel: bool = True
    #: None = paged for QLoRA (Dettmers et al. 2023), else not.
    paged_optimizer: bool | None = None
    #: allow a sequence length beyond the model's maximum.
    force: bool = False
    #: fsdp (torchtitan), megatron, deepspeed, hf-trainer or unsloth; None = megatron when the
    #: layout uses TP, PP, CP or EP, else fsdp (named in the result).
    framework: str | None = None
    #: Megatron-style context parallel ranks.
    context_parallel: int = 1
    #: expert-parallel ranks (MoE).
    expert_parallel: int = 1
    #: interleaved pipeline chunks per rank.
    virtual_pipeline: int = 1
    #: "nvlink" | "pcie3" | "pcie4" | "pcie5" between the GPUs of a node (None: the best the GPUs
    #: support), as for :func:`rigplan.estimate`.
    link: str | None = None
    #: the user's GPU prices ($) over the catalogue's (the CLI reads them from config.toml).
    prices: Mapping[str, float] | None = None
    #: the user's on-demand rent ($/GPU-hour) over the catalogue's.
    rental: Mapping[str, float] | None = None
    #: the user's electricity price ($/kWh) over the catalogue's.
    kwh_price: float | None = None

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> TrainingSettings:
        """The settings from keyword arguments; an unknown name raises, suggesting the nearest."""
        names = [f.name for f in fields(cls)]
        for key in settings:
            if key not in names:
                near = closest(key, names)
                hint = f" — did you mean {', '.join(near)}?" if near else ""
                raise InvalidValueError(key, f"not an option of a training estimate{hint}")
        return cls(**settings)
