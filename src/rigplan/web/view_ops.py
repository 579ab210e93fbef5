"""The page's newer views: what a rig can run, and context / batch sweeps of one setup."""

from __future__ import annotations

from typing import Any

from rigplan import InvalidValueError, RigplanError, UnsupportedError

from . import schemas
from .estimate_ops import sweep_point
from .inputs import Inputs

#: Default sweep points: powers of two from 2k to 128k tokens (cut at the model's maximum) ...
CONTEXT_POINTS = (2048, 4096, 8192, 16384, 32768, 65536, 131072)
#: ... and batch 1 to 64 (llama-server's -np and vLLM's concurrent sequences alike).
BATCH_POINTS = (1, 2, 4, 8, 16, 32, 64)


def what_fits(req: schemas.WhatFitsRequest, inputs: Inputs) -> dict[str, Any]:
    """Catalogue models × quants the rig runs, biggest first, each with the longest context
    that fits and its decode speed (with a range) at 4k context (`rigplan.what_fits`)."""
    from rigplan import what_fits as run

    return run(
        inputs.rig(req.rig),
        engine=req.engine,
        models=[inputs.model(m) for m in req.model] or None,
        quants=req.quant or None,
        min_tokens_per_s=req.min_tokens_per_s,
        limit=req.limit,
    ).to_dict()


def sweep(req: schemas.SweepRequest, inputs: Inputs) -> dict[str, Any]:
    """Decode speed per sequence and in all, prefill, and memory of one setup at each context
    or batch size; a point that does not fit or is refused carries its reason."""
    from rigplan import load_catalog, resolve_model_input

    model = inputs.model(req.model)
    mdl = resolve_model_input(model, load_catalog())
    if req.values:
        values = sorted(set(req.values))
    elif req.axis == "context":
        values = sorted({v for v in CONTEXT_POINTS if v < mdl.max_context} | {min(mdl.max_context, CONTEXT_POINTS[-1])})
    else:
        values = list(BATCH_POINTS)
    points = [{req.axis: v, **_sweep_point(req, model, inputs.rig(req.rig), v)} for v in values]
    return {"model": inputs.model_name(req.model), "rig": req.rig, "axis": req.axis, "points": points}


def _sweep_point(req: schemas.SweepRequest, model: Any, rig: str, value: int) -> dict[str, Any]:
    from rigplan import estimate as run

    kw: dict[str, Any] = {
        "quant": req.quant,
        "engine": req.engine,
        "context": req.context,
        "batch": req.batch,
        "prompt_tokens": req.prompt_tokens,
        "output_tokens": req.output_tokens,
    }
    kw[req.axis] = value
    if req.axis == "context":
        kw["prompt_tokens"] = min(req.prompt_tokens, max(0, value - req.output_tokens))
    try:
        d = run(model, rig, **kw).to_dict()
    except (InvalidValueError, UnsupportedError) as exc:
        return {"fits": False, "error": str(exc)}
    except RigplanError:
        raise  # an unknown name: the request itself is wrong
    return {
        **sweep_point(d),
        "prefill_tokens_per_s": d["speed"]["prefill_tokens_per_s"],
        "capacity_bytes": sum(g["usable_bytes"] for g in d["memory"]["per_gpu"]),
    }
