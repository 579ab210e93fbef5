"""Memory headroom: a visible margin on every GPU, and what would make a tight rig fit.

The memory model counts weights, KV cache, compute buffers and the engine's fixed overhead per
GPU (llama.cpp's CUDA context, PyTorch's context and CUDA graphs, NCCL buffers).  What it cannot
see — the driver's own reservation, a desktop session on the same card, allocator
fragmentation, a longer prompt than planned — is covered by a margin: a GPU filled above
``1 - margin`` of what the engine may use is "tight", and a plan does not count it as fitting.
vLLM-class engines size their KV pool to fill ``gpu_memory_utilization`` (0.9) by design, so
their 10 % reserve is the margin and no further one applies.

:func:`advise` lists the cheapest changes that would make a rig that does not fit (or is
tight) fit: a q8_0 KV cache, a shorter context, a smaller quant, one more GPU.  It estimates
each change through the function it is given; :func:`rigplan.fit_advice` (the edge) gives it
the public :func:`rigplan.estimate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .engines import get_engine
from .errors import RigplanError
from .quant import get_quant
from .results import Estimate
from .rig import Rig

#: Share of each GPU's usable memory kept free by default.  The issue's 0.3–0.8 GiB CUDA
#: context is 1–3 % of a 24 GB card; 5 % also leaves room for fragmentation and a display.
DEFAULT_MARGIN = 0.05
#: Quants tried, in order, when a smaller one is advised (llama.cpp mixes, then the 4-bit
#: formats of the other engines).
SMALLER_QUANTS: dict[str, tuple[str, ...]] = {
    "llama.cpp": ("f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m", "q2_k"),
    "vllm": ("bf16", "fp8", "int8", "int4"),
    "exllamav2": ("exl2-8.0", "exl2-6.0", "exl2-5.0", "exl2-4.0", "exl2-3.0"),
    "transformers": ("bf16", "int8", "nf4"),
}
#: "One more GPU" is advised up to this many GPUs in the box (the largest 8-GPU servers).
MAX_GPUS_ADVISED = 8
#: Contexts tried when a shorter one is advised: halvings of the asked context, not below this.
MIN_ADVISED_CONTEXT = 512

#: Estimates one changed setup: ``run(model, rig, quant=..., context=..., ...)``, the keyword
#: arguments of :func:`rigplan.estimate`.
EstimateFn = Callable[..., Estimate]


def fullest_fraction(est: Estimate) -> float:
    """The fullest GPU's total as a share of the memory the engine may use there."""
    return max((d.total_bytes / d.usable_bytes if d.usable_bytes else float("inf")) for d in est.memory.devices)


def margin_applies(est: Estimate) -> bool:
    """Whether the margin is checked: not on engines that size a KV pool to a utilization."""
    return est.engine.memory_utilization is None


def within_margin(est: Estimate, margin: float = DEFAULT_MARGIN) -> bool:
    """Fits, and (where the margin applies) its fullest GPU is at most ``1 - margin`` full."""
    if not est.fits:
        return False
    return not margin_applies(est) or fullest_fraction(est) <= 1.0 - margin


@dataclass(frozen=True, slots=True)
class Advice:
    """One change that makes the rig fit, with the fullest GPU's share after it."""

    change: str
    fullest: float

    def text(self) -> str:
        return f"{self.change} (fullest GPU {self.fullest:.0%})"


def _try(est: Estimate, margin: float, run: EstimateFn, **changes: Any) -> Estimate | None:
    kwargs: dict[str, Any] = {
        "quant": est.quant.id,
        "engine": est.engine.id,
        "context": est.workload.context,
        "batch": est.workload.batch,
        "prompt_tokens": min(est.workload.prompt_tokens, est.workload.context // 2),
        "output_tokens": min(est.output_tokens, est.workload.context // 4),
        "kv_dtype": est.workload.kv_dtype,
        "use_user_calibration": False,
    }
    kwargs.update(changes)
    ctx = int(kwargs["context"])
    kwargs["prompt_tokens"] = min(int(kwargs["prompt_tokens"]), ctx // 2)
    kwargs["output_tokens"] = min(int(kwargs["output_tokens"]), ctx // 4)
    try:
        out = run(est.model, kwargs.pop("rig", est.rig), **kwargs)
    except RigplanError:
        return None
    return out if within_margin(out, margin) else None


def advise(est: Estimate, run: EstimateFn, margin: float = DEFAULT_MARGIN, limit: int = 3) -> list[Advice]:
    """Up to ``limit`` single changes that make ``est``'s rig fit within the margin, cheapest
    first: a q8_0 KV cache (llama.cpp), the longest shorter context, the widest smaller quant,
    one more GPU of the rig's kind, each estimated by ``run``.  Empty when it already fits or
    nothing single helps."""
    if within_margin(est, margin):
        return []
    out: list[Advice] = []
    eng = get_engine(est.engine.id)
    if "q8_0" in eng.kv_dtypes and est.workload.kv_dtype not in ("q8_0", "q4_0"):
        got = _try(est, margin, run, kv_dtype="q8_0")
        if got:
            out.append(Advice("KV cache q8_0 (--kv-dtype q8_0)", fullest_fraction(got)))
    ctx = est.workload.context // 2
    while ctx >= MIN_ADVISED_CONTEXT:
        got = _try(est, margin, run, context=ctx)
        if got:
            out.append(Advice(f"context {ctx:,} instead of {est.workload.context:,}", fullest_fraction(got)))
            break
        ctx //= 2
    ladder = SMALLER_QUANTS.get(eng.family, ())
    if est.quant.id in ladder:
        for qid in ladder[ladder.index(est.quant.id) + 1 :]:
            got = _try(est, margin, run, quant=get_quant(qid).id)
            if got:
                out.append(Advice(f"quant {qid} instead of {est.quant.id}", fullest_fraction(got)))
                break
    if est.rig.nodes == 1 and not any(g.is_system for g in est.rig.gpus) and est.rig.gpus_per_node < MAX_GPUS_ADVISED:
        bigger = Rig(gpus=(*est.rig.gpus, est.rig.gpus[-1]), nodes=1, network=est.rig.network)
        got = _try(est, margin, run, rig=bigger)
        if got:
            out.append(Advice(f"one more {est.rig.gpus[-1].id} ({bigger.describe()})", fullest_fraction(got)))
    return out[:limit]
