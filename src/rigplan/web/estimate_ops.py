"""Operations over one model and given rigs: estimate, capacity, compare, scaling, vram.

Each is a pure function of its request (and :class:`~.inputs.Inputs`, which says what a client
may name) returning the dict the CLI prints with ``--json``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

from rigplan import InvalidValueError, RigplanError, UnknownNameError, UnsupportedError, load_catalog

from . import schemas
from .errors import error_body
from .inputs import Inputs

VRAM_CACHE_SIZE = 1024  # vram cells take up to a second (smallest-rig search): keep recent ones
# Work one /api/vram request may do before it is refused (checked between cells; one cell of a
# 405B model at 128k context with the rig search takes ~1 s on an idle core): answer or refuse
# within 3 s.
VRAM_BUDGET_S = 1.5


def estimate(req: schemas.EstimateRequest, inputs: Inputs) -> dict[str, Any]:
    """The estimate dict of design.md §3: `fits`, `memory.per_gpu`, `speed`, `power`,
    `provenance` — the same as `rigplan estimate --json` (`--explain` prints `provenance`)."""
    from rigplan import estimate as run

    kw = req.model_dump()
    kw["lanes"] = None if req.lanes is None else int(req.lanes)
    kw["model"] = inputs.model(req.model)
    kw["rig"] = inputs.rig(req.rig)
    return run(**kw).to_dict()


def compare(req: schemas.CompareRequest, inputs: Inputs) -> dict[str, Any]:
    """Each rig's estimate dict, or its error, in the order given (`rigplan compare --json`)."""
    from rigplan import estimate as run

    model = inputs.model(req.model)
    results: list[dict[str, Any]] = []
    for rig in req.rig:
        try:
            results.append(
                run(
                    model,
                    inputs.rig(rig),
                    quant=req.quant,
                    engine=req.engine,
                    context=req.context,
                    batch=req.batch,
                    prompt_tokens=req.prompt_tokens,
                    output_tokens=req.output_tokens,
                ).to_dict()
            )
        except RigplanError as exc:
            results.append({"rig": rig, **error_body(exc)})
    return {"model": inputs.model_name(req.model), "results": results}


def scaling(req: schemas.ScalingRequest, inputs: Inputs) -> dict[str, Any]:
    """For each GPU type, 1…max_gpus of it: whether the model fits and its decode speed."""
    from rigplan import Rig, resolve_gpu

    catalog = load_catalog()
    model = inputs.model(req.model)
    lines = []
    for gpu in dict.fromkeys(resolve_gpu(g, catalog) for g in req.gpu):
        points = []
        for n in range(1, (1 if gpu.is_system else req.max_gpus) + 1):
            rig = Rig(gpus=(gpu,) * n)
            points.append({"gpus": n, "rig": rig.describe(), **_scaling_point(req, model, rig, first=n == 1)})
        lines.append({"gpu": gpu.id, "points": points})
    return {"model": inputs.model_name(req.model), "engine": req.engine, "lines": lines}


def _scaling_point(req: schemas.ScalingRequest, model: Any, rig: Any, *, first: bool) -> dict[str, Any]:
    from rigplan import estimate as run

    try:
        d = run(
            model,
            rig,
            quant=req.quant,
            engine=req.engine,
            context=req.context,
            batch=req.batch,
            prompt_tokens=req.prompt_tokens,
            output_tokens=req.output_tokens,
            catalog=load_catalog(),
        ).to_dict()
    except (UnknownNameError, InvalidValueError) as exc:
        if first:
            raise  # the request itself is wrong (unknown quant, bad context)
        return {"error": str(exc)}
    except UnsupportedError as exc:
        return {"error": str(exc)}
    return {**sweep_point(d), "ttft_s": d["speed"]["ttft_s"]}


def sweep_point(d: dict[str, Any]) -> dict[str, Any]:
    """The figures a chart point shows, from an estimate's ``to_dict()``."""
    s = d["speed"]
    return {
        "fits": d["fits"],
        "quant": d["quant"],
        "decode_tokens_per_s": s["decode_tokens_per_s"],
        "decode_tokens_per_s_range": s["decode_tokens_per_s_range"],
        "decode_throughput_tokens_per_s": s["decode_throughput_tokens_per_s"],
        "memory_bytes": sum(g["total_bytes"] for g in d["memory"]["per_gpu"]),
    }


def capacity(req: schemas.CapacityRequest, inputs: Inputs) -> dict[str, Any]:
    """Users the rig serves at once, each at `min_tok_s` or faster, with a range and what
    limits it (`rigplan capacity --json`)."""
    from rigplan import capacity as run

    return run(
        inputs.model(req.model),
        inputs.rig(req.rig),
        users=req.users,
        context=req.context,
        min_tokens_per_s=req.min_tok_s,
        engine=req.engine,
        quant=req.quant,
        prompt_tokens=req.prompt_tokens,
        output_tokens=req.output_tokens,
        kv_dtype=req.kv_dtype,
    ).to_dict()


def vram(req: schemas.VramRequest, inputs: Inputs) -> dict[str, Any]:
    """Memory per quant and context, and the smallest rig of each GPU class (`rigplan vram`)."""
    model = inputs.model(req.model)
    cache = isinstance(model, str) and model in load_catalog().models
    return vram_bounded(model, req.quant, req.context, req.engine, req.rigs, cache=cache)


@functools.lru_cache(maxsize=VRAM_CACHE_SIZE)
def _vram_cell(model: Any, quant: str, context: int, engine: str, rigs: bool) -> tuple[Any, list[Any]]:
    from rigplan import vram_table

    return vram_table(model, quants=(quant,), contexts=(context,), engine=engine, with_rigs=rigs)


def vram_bounded(
    model: Any, quants: Sequence[str], contexts: Sequence[int], engine: str, rigs: bool, *, cache: bool
) -> dict[str, Any]:
    """The vram table cell by cell, refusing once it has taken :data:`VRAM_BUDGET_S`.

    Raises:
        InvalidValueError: the request needs more work than one request may take.
    """
    from rigplan import default_contexts, resolve_model_input, vram_dict

    cell = _vram_cell if cache else _vram_cell.__wrapped__
    mdl = resolve_model_input(model, load_catalog())
    started = time.monotonic()
    rows: list[Any] = []
    for quant in quants:
        for context in contexts or default_contexts(mdl):
            if time.monotonic() - started > VRAM_BUDGET_S:
                raise InvalidValueError(
                    "quant",
                    f"this table needs more than {VRAM_BUDGET_S:g} s of work: ask for fewer quants or "
                    "contexts, or rigs=false (the smallest-rig search is the slow part)",
                )
            rows += cell(model, quant, context, engine, rigs)[1]
    return vram_dict(mdl, engine, rows)
