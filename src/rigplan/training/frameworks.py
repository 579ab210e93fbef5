"""Training frameworks as profiles: how much of the physics model's speed each stack reaches.

The speed model (:mod:`.speed`) is fitted on PyTorch FSDP stacks (llm-foundry, torchtitan on
A100, Hopper factors from llm-foundry H100).  A framework profile scales it with two fitted
numbers that carry over between GPUs and models because they describe the software, not the
hardware: ``compute_factor`` (kernel quality and fusion: Transformer Engine, torch.compile,
Unsloth's Triton kernels) and ``fp8_share`` (the share of the FP8 tensor peak its FP8 linears
reach, relative to what bf16 GEMMs reach of theirs).  Profiles without published rows of their
own borrow a fitted one through a published speed ratio, and say so.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

from ..errors import InvalidValueError
from .setup import Layout


class Framework(StrEnum):
    """fsdp: PyTorch FSDP/FSDP2 stacks (torchtitan, llm-foundry, torchtune, NeMo AutoModel);
    megatron: Megatron-Core / NeMo / Megatron-Bridge; deepspeed: DeepSpeed ZeRO;
    hf-trainer: Hugging Face Trainer / TRL / Axolotl; unsloth: Unsloth (one GPU)."""

    FSDP = "fsdp"
    MEGATRON = "megatron"
    DEEPSPEED = "deepspeed"
    HF_TRAINER = "hf-trainer"
    UNSLOTH = "unsloth"


FRAMEWORK_ALIASES = {
    "torchtitan": "fsdp",
    "fsdp2": "fsdp",
    "pytorch": "fsdp",
    "llm-foundry": "fsdp",
    "torchtune": "fsdp",
    "nemo-automodel": "fsdp",
    "automodel": "fsdp",
    "megatron-core": "megatron",
    "megatron-lm": "megatron",
    "nemo": "megatron",
    "megatron-bridge": "megatron",
    "zero": "deepspeed",
    "hf": "hf-trainer",
    "transformers": "hf-trainer",
    "trl": "hf-trainer",
    "axolotl": "hf-trainer",
}
# The default when none is named: the stack the physics model was fitted on.
DEFAULT_FRAMEWORK = Framework.FSDP


@dataclass(frozen=True, slots=True)
class FrameworkProfile:
    """What one framework reaches relative to the fitted physics model, and how far off it can be."""

    name: str
    label: str
    compute_factor: float  # × the matmul and attention efficiencies of the speed profile
    fp8_share: float  # FP8 linears: share of the FP8 peak, relative to bf16's share of its peak
    fp4_share: float  # NVFP4 linears: the same for the FP4 peak
    range_low: float  # relative error bounds of the estimate (−0.2 = 20% below)
    range_high: float
    loso_mape: float | None  # leave-one-source-out mean absolute error on its own rows
    rows: int
    sources: tuple[str, ...]
    basis: str  # "fitted" or how it was derived
    note: str = ""
    # × the expert (grouped) GEMM efficiency: token permutation, routing and grouped-GEMM kernels
    # of the framework's MoE layer (fitted on its MoE rows; 1.0 where it has none).
    moe_factor: float = 1.0
    # Seconds per MoE layer per micro-batch (forward + backward) spent outside the GEMMs by
    # dropless routing: the token-count device→host sync and the permute / unpermute / router
    # kernel launches it leaves the GPU waiting on (fitted on its MoE rows; 0.0 where it has none).
    # Hidden where the rig is an NVL72 rack: the published GB200 recipes capture CUDA graphs.
    moe_layer_s: float = 0.0


def parse_framework(value: Any) -> Framework:
    """A framework name or alias → :class:`Framework` (None: the default).

    >>> parse_framework("torchtitan")
    <Framework.FSDP: 'fsdp'>
    """
    if value is None:
        return DEFAULT_FRAMEWORK
    text = str(value).strip().lower()
    text = FRAMEWORK_ALIASES.get(text, text)
    try:
        return Framework(text)
    except ValueError:
        allowed = ", ".join(f.value for f in Framework)
        raise InvalidValueError(
            "framework", f"must be one of {allowed} (or torchtitan, nemo, trl, axolotl), got {value!r}"
        ) from None


#: Neutral profile: the physics model as fitted (used by the fit itself and as a fallback).
NEUTRAL = FrameworkProfile(
    name="fsdp",
    label="physics model as fitted",
    compute_factor=1.0,
    fp8_share=0.6,
    fp4_share=0.6,
    range_low=-0.12,
    range_high=0.12,
    loso_mape=None,
    rows=0,
    sources=(),
    basis="fitted",
)


@functools.cache
def frameworks_data() -> dict[str, Any]:
    """``profiles/frameworks.toml`` as TOML data (written by :mod:`.validate`)."""
    text = resources.files("rigplan.training").joinpath("profiles", "frameworks.toml").read_text("utf-8")
    return tomllib.loads(text)


def _profile(name: str, f: dict[str, Any]) -> FrameworkProfile:
    return FrameworkProfile(
        name=name,
        label=f["label"],
        compute_factor=f["compute_factor"],
        fp8_share=f["fp8_share"],
        fp4_share=f["fp4_share"],
        range_low=f["range_low"],
        range_high=f["range_high"],
        loso_mape=f.get("loso_mape"),
        rows=f.get("rows", 0),
        sources=tuple(f.get("sources", ())),
        basis=f["basis"],
        note=f.get("note", ""),
        moe_factor=f.get("moe_factor", 1.0),
        moe_layer_s=f.get("moe_layer_s", 0.0),
    )


@functools.cache
def load_framework(framework: Framework) -> FrameworkProfile:
    """The shipped profile of ``framework``."""
    data = frameworks_data()["framework"]
    return _profile(framework.value, data[framework.value])


def default_framework(layout: Layout) -> Framework:
    """The framework assumed when none is named: Megatron-Core for layouts that use TP, PP, CP or
    EP (what the published runs of such layouts use), PyTorch FSDP otherwise."""
    mp = layout.tensor_parallel * layout.pipeline_parallel * layout.context_parallel * layout.expert_parallel
    return Framework.MEGATRON if mp > 1 else Framework.FSDP
