"""Checking the options of :func:`~.estimate.estimate_training` into a :class:`~.setup.TrainingSetup`.

Each check raises with the field named; the pure models only ever see a checked setup.
"""

from __future__ import annotations

from typing import Any

from ..catalog.records import GPU, Model
from ..errors import InvalidValueError, UnsupportedError
from .frameworks import Framework
from .setup import (
    DEFAULT_LORA_RANK,
    DEFAULT_LORA_TARGETS,
    OFFLOADS,
    Method,
    Precision,
    TrainingSetup,
    lora_target_check,
    parse_checkpointing,
    parse_method,
    parse_optimizer,
    parse_precision,
    parse_zero,
)
from .shape import ModelShape

# bf16 arithmetic arrived with Ampere (CUDA compute capability 8.0); Pascal, Volta and Turing
# lack it (torch.cuda.is_bf16_supported() is False there).  AMD's Vega 20 (gcn5: MI50/MI60,
# Radeon VII, gfx906) has no bf16 hardware either: MIOpen emulates it in software
# (AMD in ROCm/legacy-rocm-build#855, 2020-01-09); CDNA (gfx908) brought it.
NO_BF16_ARCHITECTURES = frozenset({"pascal", "volta", "turing", "gcn5"})
# AMD architectures that bitsandbytes' ROCm builds (QLoRA's NF4 kernels) do not target:
# .github/scripts/build-rocm.sh of bitsandbytes-foundation/bitsandbytes@092e9bf lists gfx90a,
# gfx942, gfx950, RDNA3 / 3.5 / 4 and, from ROCm 7.14, gfx908 and RDNA2; never gfx906.
NO_BITSANDBYTES_ARCHITECTURES = frozenset({"gcn5"})


def positive_tokens(tokens: Any) -> int | None:
    """Training tokens as a whole number (None: not given)."""
    if tokens is None:
        return None
    if isinstance(tokens, bool) or not isinstance(tokens, int | float) or not tokens > 0 or tokens != tokens:
        raise InvalidValueError("tokens", f"must be a positive number of tokens, got {tokens!r}")
    if tokens == float("inf"):
        raise InvalidValueError("tokens", "must be finite")
    return int(tokens)


def _check_sizes(model: Model, seq_len: Any, micro_batch: Any, force: bool) -> None:
    for name, value in (("seq_len", seq_len), ("micro_batch", micro_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidValueError(name, f"must be a whole number ≥ 1, got {value!r}")
    if seq_len > model.max_context and not force:
        raise InvalidValueError(
            "seq_len",
            f"{seq_len} exceeds {model.id}'s maximum of {model.max_context} tokens (--force or force=True to allow)",
        )


def _check_sharding(offload: Any, stage: int, pipeline_parallel: int, framework: Framework) -> None:
    if offload is not None and offload not in OFFLOADS:
        raise InvalidValueError("offload", f"must be one of {', '.join(OFFLOADS)} (or left out), got {offload!r}")
    if offload and stage == 0:
        raise InvalidValueError("offload", "CPU offload needs zero_stage ≥ 1 (ZeRO-Offload / FSDP CPUOffload)")
    if pipeline_parallel > 1 and stage >= 2 and framework in (Framework.MEGATRON, Framework.DEEPSPEED):
        raise UnsupportedError(
            "zero_stage: ZeRO-2/3 shard gradients that pipeline parallelism accumulates across micro-batches; "
            "DeepSpeed and Megatron allow only ZeRO-1 with pipeline_parallel > 1 (torchtitan's FSDP + PP does: "
            "framework='fsdp')"
        )


def check_lora_defaults(method: Method, lora_rank: Any, lora_targets: Any) -> None:
    """Refuse LoRA settings given with a method that trains every weight (they would be ignored)."""
    if not method.trains_base:
        return
    for name, value, default in (
        ("lora_rank", lora_rank, DEFAULT_LORA_RANK),
        ("lora_targets", lora_targets, DEFAULT_LORA_TARGETS),
    ):
        if value != default:
            raise InvalidValueError(name, f"applies to LoRA and QLoRA; method {method.value} trains every weight")


def _check_lora(shape: ModelShape, method: Method, lora_rank: Any, lora_targets: Any) -> None:
    check_lora_defaults(method, lora_rank, lora_targets)
    if method.trains_base:
        return
    if isinstance(lora_rank, bool) or not isinstance(lora_rank, int) or lora_rank < 1:
        raise InvalidValueError("lora_rank", f"must be a whole number ≥ 1, got {lora_rank!r}")
    lora_target_check(lora_targets)
    if min(shape.hidden_size, shape.ffn_activation_width) < lora_rank:
        raise InvalidValueError("lora_rank", f"{lora_rank} is larger than the layers it adapts")


def check_precision(gpu: GPU, method: Method, prec: Precision) -> None:
    """Refuse a precision or method the GPU's software stack cannot run (the message says why)."""
    if method is Method.QLORA:
        if prec not in (Precision.BF16, Precision.F16):
            raise UnsupportedError("precision: QLoRA computes in bf16 or f16 over the NF4 base (bitsandbytes)")
        if gpu.vendor not in ("nvidia", "amd"):
            raise UnsupportedError(f"method qlora: bitsandbytes needs CUDA or ROCm; {gpu.id} has neither")
        if gpu.vendor == "amd" and gpu.architecture in NO_BITSANDBYTES_ARCHITECTURES:
            raise UnsupportedError(
                f"method qlora: bitsandbytes has no ROCm build for {gpu.architecture} (gfx906: MI50/MI60, "
                f"Radeon VII); use LoRA over a 16-bit base on {gpu.id}, or a CDNA / RDNA3+ GPU"
            )
    if prec is Precision.BF16 and gpu.architecture in NO_BF16_ARCHITECTURES:
        raise UnsupportedError(f"precision bf16: {gpu.id} ({gpu.architecture}) has no bf16 support; use f16 or f32")
    if prec.low_bit and gpu.fp8_tensor_tflops is None:
        raise UnsupportedError(f"precision {prec.value}: {gpu.id} has no FP8 tensor cores (Ada, Hopper and later have)")
    if prec in (Precision.MXFP8, Precision.FP4) and gpu.architecture != "blackwell":
        raise UnsupportedError(
            f"precision {prec.value}: {gpu.id} ({gpu.architecture}) has no block-scaled tensor cores; Blackwell has"
        )


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
    framework: Framework = Framework.FSDP,
) -> TrainingSetup:
    """Check every option and build the :class:`TrainingSetup` (raises with the field named)."""
    m = parse_method(method)
    prec = parse_precision(precision)
    opt = parse_optimizer(optimizer)
    stage, hybrid = parse_zero(zero_stage)
    ckpt = parse_checkpointing(activation_checkpointing)
    _check_sizes(model, seq_len, micro_batch, force)
    _check_sharding(offload, stage, pipeline_parallel, framework)
    _check_lora(shape, m, lora_rank, lora_targets)
    check_precision(gpu, m, prec)
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
