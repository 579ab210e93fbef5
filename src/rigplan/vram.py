"""The guide's VRAM table, computed: weights and total memory per quant and context, and the
smallest rig of each GPU class that holds the model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .catalog import load_catalog
from .catalog.records import Catalog, Model
from .edge import resolve_model_input
from .engines import get_engine
from .errors import RigplanError
from .estimate import Estimate, estimate
from .memory.kv_cache import honors_window, kv_bytes
from .quant import resolve_quant
from .rig import Rig

GUIDE_QUANTS = ("4bit", "8bit", "16bit")
DEFAULT_CONTEXTS = (2048, 8192, 32768, 131072)
MAX_GPUS = 8
CLASSES = ("consumer", "workstation", "datacenter", "apple")


@dataclass(frozen=True, slots=True)
class VramRow:
    quant: str
    context: int
    weights_bytes: int
    kv_cache_bytes: int
    total_bytes: int
    smallest_rigs: dict[str, str | None]


def vram_dict(model: Model, engine: str, rows: list[VramRow]) -> dict[str, Any]:
    """The table as JSON (what ``rigplan vram --json`` and the web API print)."""
    return {"model": model.id, "engine": engine, "rows": [dataclasses.asdict(r) for r in rows]}


def _memory_only(model: Model, rig: Rig, *, qid: str, engine: str, context: int, catalog: Catalog) -> Estimate:
    """An estimate for a context of ``context`` tokens, no generation, whatever the model's maximum."""
    return estimate(
        model,
        rig,
        quant=qid,
        engine=engine,
        context=context,
        prompt_tokens=0,
        output_tokens=0,
        force=True,
        catalog=catalog,
        use_user_calibration=False,
    )


def smallest_rig(model: Model, quant: str, context: int, gpu_class: str, engine: str, catalog: Catalog) -> str | None:
    """Fewest GPUs (then the lowest known price, then least memory) of one class that hold
    the model; None if none."""
    from .catalog.query import best_price

    best: tuple[int, float, int, str] | None = None
    for gpu in catalog.gpus.values():
        if gpu.gpu_class != gpu_class or gpu.discontinued is not None:  # withdrawn from sale
            continue
        counts = (1,) if gpu.is_system else range(1, MAX_GPUS + 1)
        for n in counts:
            if best and n > best[0]:
                break
            rig = Rig(gpus=(gpu,) * n)
            try:
                e = _memory_only(model, rig, qid=quant, engine=engine, context=context, catalog=catalog)
            except RigplanError:
                continue  # e.g. a tensor-parallel size that does not divide the heads: try the next count
            if e.fits:
                price = best_price(catalog, gpu.id)
                key = (n, price.usd_per_gpu * n if price else float("inf"), gpu.memory_mib * n, rig.describe())
                if best is None or key < best:
                    best = key
                break
    return best[3] if best else None


def default_contexts(mdl: Model) -> tuple[int, ...]:
    """The table's contexts when none are asked for: the guide's, up to the model's maximum."""
    return tuple(
        sorted({c for c in DEFAULT_CONTEXTS if c < mdl.max_context} | {min(mdl.max_context, DEFAULT_CONTEXTS[-1])})
    )


def vram_table(
    model: str | Model,
    *,
    quants: tuple[str, ...] = GUIDE_QUANTS,
    contexts: tuple[int, ...] | None = None,
    engine: str = "llama.cpp",
    with_rigs: bool = True,
) -> tuple[Model, list[VramRow]]:
    """Memory of ``model`` at each quant and context on llama.cpp defaults, one GPU's worth.

    Totals add weights, KV cache, compute buffers, runtime overhead and host-side tensors as
    one number ("what the whole model needs"), for a single-GPU layout.
    """
    catalog = load_catalog()
    mdl = resolve_model_input(model, catalog)
    ctxs = contexts or default_contexts(mdl)
    reference = Rig(gpus=(catalog.gpus["h200-sxm"],))  # a large single GPU: totals, not fits
    eng = get_engine(engine)
    rows = []
    for q in quants:
        qid = resolve_quant(q, eng.id, gpu_has_fp8=False).id
        for ctx in ctxs:
            e = _memory_only(mdl, reference, qid=qid, engine=engine, context=ctx, catalog=catalog)
            rigs = {c: smallest_rig(mdl, qid, ctx, c, engine, catalog) for c in CLASSES} if with_rigs else {}
            # The KV one sequence of this context needs (a vLLM-class engine reserves a whole
            # pool instead, which says nothing about the model).
            kv = kv_bytes(
                mdl, range(mdl.num_layers), ctx, e.workload.kv_dtype, honor_window=honors_window(mdl, eng.family)
            )
            fixed = sum(d.weights_bytes + d.activations_bytes + d.overhead_bytes for d in e.memory.devices)
            rows.append(VramRow(qid, ctx, e.memory.weights_bytes, kv, fixed + kv + e.memory.host_bytes, rigs))
    return mdl, rows
