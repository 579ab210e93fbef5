"""The training model over resolved records: :func:`estimate_training_for`.

Pure: it takes a catalogue :class:`~rigplan.catalog.records.Model`, a :class:`~rigplan.rig.Rig`
and the :class:`~.settings.TrainingSettings`, checks them, and calls the memory, speed and cost
models.  Name resolution (ids, paths, rig strings) stays in :func:`rigplan.estimate_training`;
``rigplan.core.evaluate_training`` calls this directly.
"""

from __future__ import annotations

from typing import Any

from .. import arch
from ..catalog.records import GPU, Catalog, Model
from ..errors import InvalidValueError, UnsupportedError
from ..rig import Rig
from .cost import training_cost
from .frameworks import Framework, FrameworkProfile, default_framework, load_framework, parse_framework
from .memory import estimate_training_memory
from .options import build_setup, positive_tokens
from .profile import load_profile
from .provenance import training_provenance
from .result import TrainingEstimate
from .settings import TrainingSettings
from .setup import Layout, TrainingSetup, check_layout
from .shape import ModelShape, model_shape
from .speed import Interconnect, TrainingSpeed, interconnect_for, rack_nvlink_domain
from .step import estimate_training_speed
from .uncertainty import bubble_warning, speed_warnings

__all__ = ["estimate_training_for"]


def estimate_training_for(model: Model, rig: Rig, settings: TrainingSettings, catalog: Catalog) -> TrainingEstimate:
    """Memory per GPU, tokens/s, time to train and cost of training ``model`` on ``rig``.

    ``catalog`` prices the rig (buy, rent, electricity).

    Raises:
        RigplanError: impossible values, divisibility rules broken, unsupported combinations
            (each message names the field).
    """
    arch.check_supported(model)
    if rig.is_mixed:
        raise UnsupportedError("training estimates need identical GPUs; the rig mixes " + rig.describe())
    s, gpu, shape = settings, rig.gpus[0], model_shape(model)
    layout = check_layout(
        shape,
        rig.gpu_count,
        rig.gpus_per_node,
        s.tensor_parallel,
        s.pipeline_parallel,
        context_parallel=s.context_parallel,
        expert_parallel=s.expert_parallel,
        virtual_pipeline=s.virtual_pipeline,
    )
    fw = _framework(s.framework, layout, rig.gpu_count)
    global_batch, per_step = _global_batch(s.micro_batch, s.global_batch, layout)
    setup = _setup(shape, model, gpu, s, fw, global_batch // per_step, layout)
    n_tokens = positive_tokens(s.tokens)
    if s.link is not None and rig.gpus_per_node == 1 and not rack_nvlink_domain(rig.gpus):
        raise InvalidValueError("link", f"joins a node's GPUs; {rig.describe()} has one GPU per node")
    connection = interconnect_for(rig.gpus, rig.network, rig.nodes, link=s.link)
    fprofile = load_framework(fw)
    speed, reason, warnings = _speed(shape, setup, layout, gpu, connection, fprofile)
    time_s = n_tokens / speed.tokens_per_s if (n_tokens and speed) else None
    cost = training_cost(rig, catalog, time_s, prices=s.prices, rental=s.rental, usd_per_kwh=s.kwh_price)
    profile = load_profile()
    return TrainingEstimate(
        model=model,
        rig=rig,
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
        framework_default=s.framework is None,
        warnings=warnings,
        provenance=training_provenance(model, rig, setup, profile, speed, cost),
        settings=s,
    )


def _setup(
    shape: ModelShape, model: Model, gpu: GPU, s: TrainingSettings, fw: Framework, accumulation: int, layout: Layout
) -> TrainingSetup:
    return build_setup(
        shape,
        model,
        gpu,
        method=s.method,
        seq_len=s.seq_len,
        micro_batch=s.micro_batch,
        zero_stage=s.zero_stage,
        activation_checkpointing=s.activation_checkpointing,
        precision=s.precision,
        optimizer=s.optimizer,
        lora_rank=s.lora_rank,
        lora_targets=s.lora_targets,
        offload=s.offload,
        grad_accumulation=accumulation,
        pipeline_parallel=layout.pipeline_parallel,
        flash_attention=s.flash_attention,
        sequence_parallel=s.sequence_parallel,
        paged_optimizer=s.paged_optimizer,
        force=s.force,
        framework=fw,
    )


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
