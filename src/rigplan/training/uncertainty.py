"""How far a training estimate can be off, and what it should warn about.

The range comes from the framework profile's leave-one-source-out errors (``profiles/
frameworks.toml``); it widens to the errors of each release predicted from the earlier ones
(software newer than the data), and where the estimate extrapolates beyond the published runs:
MoE models (the held-out MoE errors), a GPU with no training row (the errors with one whole GPU
type held out of the fit), a framework with no rows of its own (the errors with one whole
framework held out), GPU architectures with no training row at all.
"""

from __future__ import annotations

import functools

from ..catalog.records import GPU
from .frameworks import FrameworkProfile, frameworks_data
from .setup import Precision
from .shape import ModelShape

#: The hold-out that predicts each release from the earlier ones (training.validate.later_release_out).
LATER_RELEASE = "later release"

# Architectures with published training rows in the calibration data (A100 llm-foundry and
# torchtitan; H100/H200 everything; B200 Megatron-Bridge; RTX 4090 / RTX A6000 torchtune).
CALIBRATED_ARCHITECTURES = frozenset({"ampere", "hopper", "blackwell", "ada"})
# Outside them (RDNA3, CDNA3, Turing, Volta…) the kernels the frameworks run are different code
# (ROCm hipBLASLt / CK flash attention; no FlashAttention-2 before Ampere): the range is widened
# by this factor [estimate: no published fine-tuning throughput was found for an RX 7900 XTX].
UNCALIBRATED_WIDENING = 2.0


@functools.cache
def _moe_bounds() -> tuple[float, float] | None:
    acc = frameworks_data().get("accuracy", {}).get("MoE")
    if not acc or "p10" not in acc:
        return None
    if "range_low" in acc:  # written by validate.group_errors: the bounds its coverage counts
        return acc["range_low"], acc["range_high"]
    # measured = predicted / (1 + e): the error quantiles inverted into bounds on the estimate
    return 1 / (1 + acc["p90"]) - 1, 1 / (1 + acc["p10"]) - 1


def hold_out_key(held: str, part: str) -> str:
    """The accuracy group of ``part`` ("dense" / "MoE" / "all") with one whole ``held`` ("GPU",
    "framework", LATER_RELEASE) left out of the fit, as frameworks.toml stores it."""
    return f"one {held} held out: {part}"


def _hold_out_bounds(held: str, moe: bool) -> tuple[float, float] | None:
    """The 80% bounds with one whole ``held`` ("GPU" / "framework") left out of the fit."""
    acc = frameworks_data().get("accuracy", {}).get(hold_out_key(held, "MoE" if moe else "dense"), {})
    return (acc["range_low"], acc["range_high"]) if "range_low" in acc else None


@functools.cache
def calibrated_gpus() -> frozenset[str]:
    """GPU ids with published training rows in the fit (written by :mod:`.validate`)."""
    return frozenset(frameworks_data().get("calibrated_gpus", ()))


def speed_range(framework: FrameworkProfile, shape: ModelShape, gpu: GPU) -> tuple[float, float]:
    """Relative (low, high) bounds of a tokens/s estimate (−0.2 = 20% below)."""
    lo, hi = framework.range_low, framework.range_high
    moe = shape.num_experts > 1
    wider = [
        _moe_bounds() if moe else None,
        # every estimate is used on software newer than its data: each release from the earlier ones
        _hold_out_bounds(LATER_RELEASE, moe),
        _hold_out_bounds("GPU", moe) if gpu.id not in calibrated_gpus() else None,
        _hold_out_bounds("framework", moe) if framework.basis != "fitted" else None,
    ]
    for w in wider:
        if w is not None:
            lo, hi = min(lo, w[0]), max(hi, w[1])
    if gpu.architecture not in CALIBRATED_ARCHITECTURES:
        lo, hi = max(-0.9, lo * UNCALIBRATED_WIDENING), hi * UNCALIBRATED_WIDENING
    return lo, hi


def speed_warnings(framework: FrameworkProfile, shape: ModelShape, gpu: GPU, precision: Precision) -> tuple[str, ...]:
    """Caveats a user should read next to the number."""
    out = []
    if framework.basis != "fitted":
        out.append(f"framework {framework.name}: {framework.note}")
    if gpu.architecture in CALIBRATED_ARCHITECTURES and gpu.id not in calibrated_gpus():
        out.append(f"{gpu.id}: no published training run on this GPU in rigplan's data; range as with one GPU held out")
    if gpu.architecture not in CALIBRATED_ARCHITECTURES:
        out.append(
            f"{gpu.id} ({gpu.architecture}): no published training run on this architecture in rigplan's data; "
            f"range widened ×{UNCALIBRATED_WIDENING:g}"
        )
    if gpu.fp16_tensor_tflops is None:
        out.append(f"{gpu.id}: bf16 tensor rate derived from SM count × clock (not in the catalogue)")
    if shape.num_experts > 1:
        out.append("MoE: balanced routing assumed (as the published benchmarks force); real routing is slower")
    if precision is Precision.FP4:
        out.append(f"precision fp4: NVFP4 share of peak assumed equal to FP8's ({framework.fp4_share:.2f}); not fitted")
    return tuple(out)


# A pipeline bubble above this share of the step is worth a warning: more micro-batches per step
# (global_batch) or virtual stages shrink it (Narayanan et al. 2021 §2.2).
BUBBLE_WARNING_SHARE = 0.25


def bubble_warning(breakdown: dict[str, float], step_s: float) -> tuple[str, ...]:
    bubble = breakdown.get("pipeline_bubble", 0.0)
    if step_s > 0 and bubble / step_s > BUBBLE_WARNING_SHARE:
        return (
            f"pipeline bubble is {bubble / step_s:.0%} of the step: raise global_batch (more micro-batches per step) "
            "or virtual_pipeline",
        )
    return ()
