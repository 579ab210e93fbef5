"""The training plan as text (what ``rigplan plan --task`` prints); pure, the CLI prints it."""

from __future__ import annotations

from collections.abc import Sequence

from ..units import format_gib, format_rate, format_usd
from .plan_types import TrainingOption, TrainingPlan
from .setup import Checkpointing


def format_duration(seconds: float) -> str:
    """``5400`` → ``'1.5 h'``; days past 48 h.

    >>> format_duration(5400), format_duration(42), format_duration(3 * 86400)
    ('1.5 h', '42 s', '3.0 days')
    """
    hours = seconds / 3600
    if seconds < 60:
        return f"{seconds:.0f} s"
    if hours < 1:
        return f"{seconds / 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def _layout_text(o: TrainingOption) -> str:
    s, lay = o.setup, o.layout
    parts = []
    if lay.tensor_parallel > 1:
        parts.append(f"TP{lay.tensor_parallel}")
    if lay.pipeline_parallel > 1:
        parts.append(f"PP{lay.pipeline_parallel}")
    if lay.data_parallel > 1:
        parts.append(f"DP{lay.data_parallel}" + (f" ZeRO-{s.zero_stage}" if s.zero_stage else " DDP"))
    parts.append(f"mb {s.micro_batch}×{s.grad_accumulation}")
    ckpt = {Checkpointing.NONE: "", Checkpointing.SELECTIVE: "sel-ckpt", Checkpointing.FULL: "ckpt"}[s.checkpointing]
    if ckpt:
        parts.append(ckpt)
    if s.offload:
        parts.append("offload")
    return " ".join(parts)


def render_training_plan(plan: TrainingPlan) -> str:
    """The plan as a fixed-width text table with notes (what ``rigplan plan --task`` prints)."""
    head = (
        f"{plan.model.id} · {plan.method.value} · {plan.tokens:.3g} tokens of {plan.seq_len:,} · "
        f"global batch {plan.global_batch} · ranked {plan.objective} first "
        f"({plan.rigs_considered} rigs considered)"
    )
    cols = ["#", "rig", "layout", "peak/GPU", "tok/s", "MFU", "time", "buy", "rent", "notes"]
    rows = []
    for i, o in enumerate(plan.options, 1):
        rows.append(
            [
                str(i),
                o.rig.describe(),
                _layout_text(o),
                f"{format_gib(o.memory.peak.total_bytes)}/{format_gib(o.memory.peak.capacity_bytes, 0)}",
                format_rate(o.speed.tokens_per_s, ""),
                f"{o.speed.mfu:.0%}",
                format_duration(o.time_to_train_s),
                format_usd(o.buy_usd),
                format_usd(o.rent_usd) if o.rent_usd is not None else "n/a",
                "; ".join(o.why),
            ]
        )
    widths = [max(len(c), *(len(r[j]) for r in rows)) if rows else len(c) for j, c in enumerate(cols)]
    right = {0, 3, 4, 5, 6, 7, 8}

    def line(cells: Sequence[str]) -> str:
        out = [c.rjust(w) if j in right else c.ljust(w) for j, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(out).rstrip()

    lines = [head, "", line(cols), *(line(r) for r in rows)]
    if not rows:
        lines.append("(no rig fits the constraints)")
    lines.append("")
    lines.append(
        "buy = whole machine (GPUs, platform, PSU; SXM GPUs as DGX systems where priced); rent = the same GPUs "
        f"on demand for the run (RunPod, March 2026). Speed profile {plan.profile}; framework megatron for TP/PP "
        "layouts, fsdp otherwise."
    )
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)
