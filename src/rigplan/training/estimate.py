"""``rigplan.estimate_training``: memory, speed, time and cost of training one model on one rig.

The API's edge: it resolves names (model ids, paths, rig strings) and hands the resolved records
with the :class:`~.settings.TrainingSettings` to the pure :func:`~.evaluate.estimate_training_for`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..catalog import load_catalog
from ..catalog.records import Catalog, Model
from ..edge import resolve_model_input, resolve_rig_input
from ..headroom import Advice
from ..rig import Rig
from .advice import training_advice
from .evaluate import estimate_training_for
from .options import NO_BF16_ARCHITECTURES, build_setup
from .result import TrainingEstimate
from .settings import TrainingSettings
from .setup import DEFAULT_LORA_RANK, DEFAULT_LORA_TARGETS

__all__ = ["NO_BF16_ARCHITECTURES", "TrainingEstimate", "build_setup", "estimate_training", "training_fit_advice"]

#: The arguments resolved here rather than passed on as settings.
_RESOLVED = ("model", "rig", "network", "catalog")


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
    lora_rank: int = DEFAULT_LORA_RANK,
    lora_targets: str = DEFAULT_LORA_TARGETS,
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

    ``model`` is a catalogue id, a path or Hugging Face repo id, or a dict of architecture fields;
    ``rig`` a rig string ("8x h100-sxm", "16 nodes x 8x h100-sxm") or "local", of identical GPUs.
    Every other option is a field of :class:`rigplan.training.settings.TrainingSettings`, which
    says what each means; ``network`` links the nodes, ``catalog`` replaces the shipped one.

    Raises:
        RigplanError: unknown names, impossible values, divisibility rules broken, unsupported
            combinations (each message names the field).
    """
    settings = TrainingSettings(**{k: v for k, v in locals().items() if k not in _RESOLVED})
    catalog = catalog or load_catalog()
    mdl = resolve_model_input(model, catalog)
    return estimate_training_for(mdl, resolve_rig_input(rig, catalog, network), settings, catalog)


def training_fit_advice(est: TrainingEstimate, catalog: Catalog | None = None, limit: int = 3) -> list[Advice]:
    """Up to ``limit`` changes that make ``est`` fit (ZeRO stage, recomputation, 8-bit optimizer,
    CPU offload, LoRA / QLoRA), fastest first, each estimated in full; empty when it fits.

    >>> e = estimate_training("llama-3-8b", "8x h100-sxm")
    >>> e.fits, [a.change for a in training_fit_advice(e)][:1]
    (False, ['--zero-stage 1'])
    """
    return training_advice(est, catalog or load_catalog(), limit)
