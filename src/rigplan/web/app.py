"""The FastAPI app: a JSON API over rigplan's public Python API, and the page that uses it.

Thin by design (style.md rule 1): each route checks its input with a pydantic model, calls
the public API, and returns the same dicts the CLI prints with ``--json``.  Errors become HTTP
statuses here and only here (:func:`status_for`).  Client input never reaches the filesystem
or the network unless the app was created with ``allow_paths`` / ``allow_network``.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import gzip
import importlib.util
import json
import logging
import os
import pathlib
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, NamedTuple

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .. import __version__
from ..catalog import load_catalog
from ..catalog import query as catalog_views
from ..errors import (
    DeviceError,
    InvalidValueError,
    RigplanError,
    UnknownGPUError,
    UnknownModelError,
    UnknownNameError,
    UnsupportedError,
)
from . import schemas
from .limits import MAX_BODY_BYTES, RequestSizeLimit

log = logging.getLogger("rigplan.web")

STATIC_DIR = pathlib.Path(__file__).parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
# A Hugging Face repo id: "org/name" (huggingface_hub's validate_repo_id, simplified).
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
# The page loads only what the package ships: no CDN, no inline script.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECONDS_PER_HOUR = 3600
# Answers kept per operation (a plan is ~100 KB of dicts: at most a few tens of MB in all).
ANSWER_CACHE_SIZE = 128
# Compress answers above this size (Starlette's default): the GPU list is ~60 KB of JSON.
GZIP_MIN_BYTES = 500
# zlib level for cached answers: 6 is zlib's default balance of size and time.
GZIP_LEVEL = 6
# Answers computed at once: one per core, so worker threads do not fight over the GIL.
COMPUTE_SLOTS = max(1, os.cpu_count() or 1)
VRAM_CACHE_SIZE = 1024  # vram cells take up to a second (smallest-rig search): keep recent ones
# Work one /api/vram request may do before it is refused (checked between cells; one cell of a
# 405B model at 128k context with the rig search takes ~1 s on an idle core): answer or refuse
# within 3 s.
VRAM_BUDGET_S = 1.5


class ErrorBody(BaseModel):
    """Every 4xx/5xx body: the CLI's one-line message and the error's class."""

    model_config = ConfigDict(extra="allow")
    detail: str
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A body that is not JSON, or a Host header other than loopback."},
    413: {"model": ErrorBody, "description": "A body over 64 KiB."},
    414: {"model": ErrorBody, "description": "A query string over 8 KiB."},
    404: {"model": ErrorBody, "description": "Unknown model, GPU, quant or engine (with suggestions)."},
    422: {"model": ErrorBody, "description": "Invalid or unsupported input; names the field and why."},
    500: {"model": ErrorBody, "description": "A bug in rigplan (logged with its traceback)."},
}


def status_for(exc: RigplanError) -> int:
    """The HTTP status of a rigplan error: unknown names 404, bad or unsupported input 422."""
    if isinstance(exc, UnknownNameError):
        return 404
    if isinstance(exc, InvalidValueError | UnsupportedError | DeviceError | ValueError):
        return 422
    return 400


def error_body(exc: RigplanError) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": str(exc), "error": type(exc).__name__}
    if isinstance(exc, UnknownNameError):
        body["name"] = exc.name
        body["suggestions"] = exc.suggestions
    if isinstance(exc, InvalidValueError):
        body["field"] = exc.field
    return body


def _validation_message(errors: Sequence[Any]) -> str:
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query")]
        parts.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_rigplan_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RigplanError)
        return JSONResponse(error_body(exc), status_code=status_for(exc))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return JSONResponse(
            {"detail": _validation_message(errors), "error": "ValidationError", "errors": jsonable_encoder(errors)},
            status_code=422,
        )

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's own refusals (unknown route, wrong method, unreadable body), same shape.
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # Starlette names only the first route's methods
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(
            {"detail": str(exc.detail), "error": "HTTPError"}, status_code=exc.status_code, headers=headers or None
        )

    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        # Anything else is a bug in rigplan: log it with its traceback, tell the client little.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "internal error: this is a bug in rigplan, please report it", "error": "InternalError"},
            status_code=500,
        )

    app.add_exception_handler(RigplanError, on_rigplan_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_bug)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at the request's path (for 405's ``Allow``)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if getattr(route, "path", None) == request.url.path:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def has_module(name: str) -> bool:
    """Whether an optional part of rigplan (planner, launch, training) is installed."""
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # its parent package is missing or does not import
        return False


class Inputs:
    """What the web may pass to the core: catalogue ids always; paths and repo ids by flag."""

    def __init__(self, *, allow_paths: bool, allow_network: bool) -> None:
        self.allow_paths = allow_paths
        self.allow_network = allow_network

    def model(self, text: str) -> str:
        """A model argument safe to hand to the core.

        Raises:
            UnknownModelError: not a catalogue id, and paths / repo ids are not allowed here.
        """
        from ..rig import resolve_model

        catalog = load_catalog()
        try:
            return resolve_model(text, catalog).id
        except UnknownModelError as exc:
            hint = []
            if not self.allow_paths:
                hint.append("local paths need `rigplan serve --allow-paths`")
            if not self.allow_network:
                hint.append("Hugging Face repo ids need `rigplan serve --allow-network`")
            if self.allow_paths or self.allow_network:
                # Only now may the filesystem be looked at, and only to tell a path from a repo id.
                is_path = _exists(text)
                if self.allow_paths and is_path:
                    return text
                if self.allow_network and _REPO_ID.match(text) and not is_path:
                    return text
            if hint:
                raise _with_hint(exc, hint) from None
            raise

    def rig(self, text: str) -> str:
        """A rig string; "local" (GPU detection on this machine) only where NVML support exists."""
        if text.strip().lower() == "local" and not has_module("rigplan.integrations.nvml"):
            raise InvalidValueError("rig", "'local' needs GPU detection, which this install lacks")
        return text


def _exists(text: str) -> bool:
    try:
        return pathlib.Path(text).expanduser().exists()
    except (OSError, ValueError):  # a name too long for the filesystem, a NUL byte
        return False


def _with_hint(exc: UnknownModelError, hints: list[str]) -> UnknownModelError:
    err = UnknownModelError(exc.name, exc.suggestions)
    err.args = (f"{exc}; {'; '.join(hints)}",)
    return err


@functools.lru_cache(maxsize=VRAM_CACHE_SIZE)
def _vram_cell(model: str, quant: str, context: int, engine: str, rigs: bool) -> tuple[Any, list[Any]]:
    from ..vram import vram_table

    return vram_table(model, quants=(quant,), contexts=(context,), engine=engine, with_rigs=rigs)


def vram_bounded(
    model: str, quants: Sequence[str], contexts: Sequence[int], engine: str, rigs: bool, *, cache: bool
) -> dict[str, Any]:
    """The vram table cell by cell, refusing once it has taken :data:`VRAM_BUDGET_S`.

    Raises:
        InvalidValueError: the request needs more work than one request may take.
    """
    from ..catalog import load_catalog as catalogue
    from ..edge import resolve_model_input
    from ..vram import default_contexts, vram_dict

    cell = _vram_cell if cache else _vram_cell.__wrapped__
    mdl = resolve_model_input(model, catalogue())
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


@functools.cache
def _models_listing() -> dict[str, Any]:
    # The shipped catalogue never changes while the server runs; counting parameters does cost.
    return {"models": [catalog_views.model_dict(m) for m in catalog_views.list_models()]}


def _estimate_kwargs(req: schemas.EstimateRequest, inputs: Inputs) -> dict[str, Any]:
    kw = req.model_dump()
    kw["lanes"] = None if req.lanes is None else int(req.lanes)
    kw["model"] = inputs.model(req.model)
    kw["rig"] = inputs.rig(req.rig)
    return kw


class AnswerCache:
    """Recent answers by operation and request, kept as encoded JSON and its gzip.

    Every operation is a pure function of its request, the shipped catalogue and the user's
    files (config.toml, stored calibration), so an answer is reused until one of those files
    changes.  A hit is served on the event loop at once (bytes: no encoding, no compression);
    a miss is computed in a worker thread, at most :data:`COMPUTE_SLOTS` at a time so threads
    do not fight over the GIL, and once for any number of clients asking the same question.
    Errors are never cached.
    """

    def __init__(self, size: int = ANSWER_CACHE_SIZE) -> None:
        self.size = size
        self.slots: asyncio.Semaphore | None = None  # made on the server's event loop

    def remember(self, path: str, handler: Callable[[Any], Any]) -> Callable[[Any, Request], Awaitable[Response]]:
        store: collections.OrderedDict[tuple[str, tuple[tuple[str, int], ...]], Encoded] = collections.OrderedDict()
        pending: dict[str, asyncio.Lock] = {}

        def compute(key: str, request_model: type[schemas.Request]) -> Encoded:
            result = handler(request_model.model_validate_json(key))
            raw = json.dumps(jsonable_encoder(result), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            body = raw.encode()
            return Encoded(body, gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0))

        async def run(req: schemas.Request, request: Request) -> Response:
            key = req.model_dump_json()
            slot = (key, user_files_signature())
            answer = store.get(slot)
            if answer is None:
                lock = pending.setdefault(key, asyncio.Lock())
                async with lock:  # the first request computes; the others wait for its answer
                    answer = store.get(slot)
                    if answer is None:
                        async with self._slots():
                            answer = await run_in_threadpool(compute, key, type(req))
                        store[slot] = answer
                        if len(store) > self.size:
                            store.popitem(last=False)
                pending.pop(key, None)
            store.move_to_end(slot)
            return encoded_response(answer, request)

        return run

    def _slots(self) -> asyncio.Semaphore:
        if self.slots is None:
            self.slots = asyncio.Semaphore(COMPUTE_SLOTS)
        return self.slots


def encoded_response(answer: Encoded, request: Request) -> Response:
    """The cached JSON, gzipped when the client accepts it and it is worth it."""
    if "gzip" in request.headers.get("accept-encoding", "") and len(answer.body) >= GZIP_MIN_BYTES:
        headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return Response(answer.gzipped, media_type="application/json", headers=headers)
    return Response(answer.body, media_type="application/json", headers={"Vary": "Accept-Encoding"})


class Encoded(NamedTuple):
    body: bytes
    gzipped: bytes


def user_files_signature() -> tuple[tuple[str, int], ...]:
    """(path, modification time) of each user file an answer may depend on."""
    from ..calibration.user import store_path
    from ..edge import user_config_path

    out = []
    for path in (user_config_path(), store_path()):
        try:
            out.append((str(path), os.stat(path).st_mtime_ns))  # the server's own files, never a client's
        except OSError:
            out.append((str(path), 0))
    return tuple(out)


def strict_json(request_model: type[schemas.Request]) -> Callable[[Request], Awaitable[None]]:
    """A dependency that re-checks a JSON body strictly: ``"5"`` is not an integer and ``0`` is
    not a boolean in JSON, as the schema says (FastAPI's own check is lax, for query strings)."""

    async def check(request: Request) -> None:
        try:
            data = json.loads(await request.body())
        except ValueError:
            return  # FastAPI's own body parsing answers with 400
        try:
            request_model.model_validate_json(json.dumps(_whole_floats_as_ints(data)), strict=True)
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from None

    return check


def _whole_floats_as_ints(data: Any) -> Any:
    # JSON Schema's "integer" admits 1.0; pydantic's strict mode would not.
    if isinstance(data, float) and data.is_integer():
        return int(data)
    if isinstance(data, list):
        return [_whole_floats_as_ints(x) for x in data]
    if isinstance(data, dict):
        return {k: _whole_floats_as_ints(v) for k, v in data.items()}
    return data


def build_api(inputs: Inputs) -> APIRouter:
    """The /api routes.  Each operation answers GET (query) and POST (JSON) alike."""
    api = APIRouter(prefix="/api", responses=ERRORS)
    answers = AnswerCache()

    def both(
        path: str, request_model: type[schemas.Request], handler: Callable[[Any], Any], *, summary: str, tags: list[str]
    ) -> None:
        """Register ``handler`` for GET with query parameters and POST with a JSON body."""

        cached = answers.remember(path, handler)

        async def get(params: Any, request: Request) -> Any:
            return await cached(params, request)

        async def post(body: Any, request: Request, _: Any) -> Any:
            return await cached(body, request)

        # Real objects, not strings: this module's annotations are postponed (PEP 563) and
        # ``request_model`` is local, so FastAPI could not resolve the names.
        get.__annotations__ = {"params": Annotated[request_model, Query()], "request": Request, "return": Any}
        post.__annotations__ = {
            "body": request_model,
            "request": Request,
            "_": Annotated[None, Depends(strict_json(request_model))],
            "return": Any,
        }

        name = path.strip("/").replace("/", "_")
        api.add_api_route(
            path,
            get,
            methods=["GET"],
            summary=summary,
            tags=tags,
            operation_id=f"{name}_get",
            description=handler.__doc__,
        )
        api.add_api_route(
            path,
            post,
            methods=["POST"],
            summary=f"{summary} (JSON body)",
            tags=tags,
            operation_id=f"{name}_post",
            description=handler.__doc__,
        )

    def estimate(req: schemas.EstimateRequest) -> dict[str, Any]:
        """The estimate dict of design.md §3: `fits`, `memory.per_gpu`, `speed`, `power`,
        `provenance` — the same as `rigplan estimate --json`."""
        from ..estimate import estimate as run

        return run(**_estimate_kwargs(req, inputs)).to_dict()

    def compare(req: schemas.CompareRequest) -> dict[str, Any]:
        """Each rig's estimate dict, or its error, in the order given (`rigplan compare --json`)."""
        from ..estimate import estimate as run

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
        return {"model": model, "results": results}

    def scaling(req: schemas.ScalingRequest) -> dict[str, Any]:
        """For each GPU type, 1…max_gpus of it: whether the model fits and its decode speed."""
        from ..estimate import estimate as run
        from ..rig import Rig, resolve_gpu

        catalog = load_catalog()
        model = inputs.model(req.model)
        gpus = list(dict.fromkeys(resolve_gpu(g, catalog) for g in req.gpu))
        lines = []
        for gpu in gpus:
            points = []
            for n in range(1, (1 if gpu.is_system else req.max_gpus) + 1):
                rig = Rig(gpus=(gpu,) * n)
                point: dict[str, Any] = {"gpus": n, "rig": rig.describe()}
                try:
                    e = run(
                        model,
                        rig,
                        quant=req.quant,
                        engine=req.engine,
                        context=req.context,
                        batch=req.batch,
                        prompt_tokens=req.prompt_tokens,
                        output_tokens=req.output_tokens,
                        catalog=catalog,
                    )
                except (UnknownNameError, InvalidValueError) as exc:
                    if n == 1:
                        raise  # the request itself is wrong (unknown quant, bad context)
                    point["error"] = str(exc)
                except UnsupportedError as exc:
                    point["error"] = str(exc)
                else:
                    d = e.to_dict()
                    s = d["speed"]
                    point.update(
                        fits=d["fits"],
                        quant=d["quant"],
                        decode_tokens_per_s=s["decode_tokens_per_s"],
                        decode_tokens_per_s_range=s["decode_tokens_per_s_range"],
                        decode_throughput_tokens_per_s=s["decode_throughput_tokens_per_s"],
                        ttft_s=s["ttft_s"],
                        memory_bytes=sum(g["total_bytes"] for g in d["memory"]["per_gpu"]),
                    )
                points.append(point)
            lines.append({"gpu": gpu.id, "points": points})
        return {"model": model, "engine": req.engine, "lines": lines}

    def vram(req: schemas.VramRequest) -> dict[str, Any]:
        """Memory per quant and context, and the smallest rig of each GPU class (`rigplan vram`)."""
        model = inputs.model(req.model)
        cache = model in load_catalog().models
        return vram_bounded(model, req.quant, req.context, req.engine, req.rigs, cache=cache)

    def gpus(req: schemas.GpusRequest) -> dict[str, Any]:
        """The GPU catalogue, filtered and sorted (`rigplan gpus --json`)."""
        rows = catalog_views.list_gpus(
            min_memory_gb=req.min_memory_gb,
            nvlink=req.nvlink,
            vendor=req.vendor,
            gpu_class=req.gpu_class,
            sort=req.sort,
        )
        return {"gpus": [catalog_views.gpu_dict(v) for v in rows]}

    def capacity(req: schemas.CapacityRequest) -> dict[str, Any]:
        """Users the rig serves at once, each at `min_tok_s` or faster, with a range and what
        limits it (`rigplan capacity --json`)."""
        from ..capacity import capacity as run

        return run(
            inputs.model(req.model),
            inputs.rig(req.rig),
            users=req.users,
            context=req.context,
            min_tokens_per_s=req.min_tok_s,
            engine=req.engine,
            quant=req.quant,
            output_tokens=req.output_tokens,
            kv_dtype=req.kv_dtype,
        ).to_dict()

    both("/estimate", schemas.EstimateRequest, estimate, summary="Estimate one model on one rig", tags=["estimate"])
    both("/capacity", schemas.CapacityRequest, capacity, summary="Users a rig serves at a speed", tags=["estimate"])
    both("/compare", schemas.CompareRequest, compare, summary="Compare rigs for one model", tags=["estimate"])
    both("/scaling", schemas.ScalingRequest, scaling, summary="Speed and fit against GPU count", tags=["estimate"])
    both("/vram", schemas.VramRequest, vram, summary="Memory table per quant and context", tags=["estimate"])

    def launch(req: schemas.LaunchRequest) -> dict[str, Any]:
        """The commands and config files that run the setup (`rigplan launch --json`), plus `text`:
        every command as the shell reads it, one flag per line."""
        from ..integrations import launch as launching

        model, rig = inputs.model(req.model), inputs.rig(req.rig)
        if req.task == "serve":
            plan = launching.launch_plan(
                model,
                rig,
                engine=req.engine,
                quant=req.quant,
                context=req.context,
                users=req.users,
                kv_dtype=req.kv_dtype,
                split=req.split,
                tensor_parallel=req.tensor_parallel,
                pipeline_parallel=req.pipeline_parallel,
                gpu_layers=req.gpu_layers,
                network=req.network,
            )
        else:
            plan = launching.training_plan(model, rig, task=req.task, script=req.script, network=req.network)
        out = plan.to_dict()
        out["text"] = "\n\n".join((f"# {c.where}\n" if c.where else "") + c.text(multiline=True) for c in plan.commands)
        return out

    def plan(req: schemas.PlanRequest) -> dict[str, Any]:
        """Ranked rigs with estimate, power, platform, whole-rig cost, why and avoid-if; or, when
        none qualifies, what each constraint excluded and the nearest miss (`rigplan plan --json`)."""
        from ..planner import parse_price_overrides
        from ..planning import plan_rigs

        result = plan_rigs(
            inputs.model(req.model),
            quant=req.quant,
            context=req.context,
            users=req.users,
            min_tokens_per_s=req.min_tokens_per_s,
            budget_usd=req.budget,
            max_watts=req.max_watts,
            circuit=req.circuit,
            max_gpus=req.max_gpus,
            gpu_class=req.gpu_class,
            platform=req.platform,
            nvlink=req.nvlink,
            have=req.have,
            engine=req.engine,
            objective=req.objective,
            top=req.top,
            prices=parse_price_overrides(req.price),
            kwh_price=req.kwh_price,
        )
        return result.to_dict()

    def power(req: schemas.PowerRequest) -> dict[str, Any]:
        """PSU size (ATX 3.x and 2.x), power leads, wall circuits under the 80 % rule, a power
        limit's speed cost and the electricity bill (`rigplan power --json`)."""
        from ..power_report import power_report

        report = power_report(
            inputs.rig(req.rig),
            platform=req.platform,
            circuit=req.circuit,
            power_limit=req.power_limit,
            kwh_price=req.kwh_price,
            model=inputs.model(req.model) if req.model else None,
            quant=req.quant,
            engine=req.engine,
        )
        return report.to_dict()

    def train(req: schemas.TrainRequest) -> dict[str, Any]:
        """Memory per GPU (weights, gradients, optimizer states, activations), tokens/s with a
        range, time to train and cost of one training layout (`rigplan train --json`)."""
        from ..training.estimate import estimate_training

        kw = req.model_dump(exclude={"model", "rig"})
        return estimate_training(inputs.model(req.model), inputs.rig(req.rig), **kw).to_dict()

    def train_plan(req: schemas.TrainPlanRequest) -> dict[str, Any]:
        """Rigs for a training job, each with its fastest layout that fits, ranked by cost to buy
        or time to train (`rigplan plan MODEL --task ... --json`)."""
        from ..training.planner import plan_training

        result = plan_training(
            inputs.model(req.model),
            task=req.task,
            tokens=req.tokens,
            deadline_s=req.deadline_hours * SECONDS_PER_HOUR if req.deadline_hours else None,
            budget_usd=req.budget,
            max_gpus=req.max_gpus,
            gpu_class=req.gpu_class,
            gpus=req.gpu or None,
            seq_len=req.seq_len,
            objective=req.objective,
            allow_offload=req.allow_offload,
            limit=req.limit,
        )
        return result.to_dict()

    if features()["training"]:
        both("/train", schemas.TrainRequest, train, summary="Estimate one training setup", tags=["training"])
    if features()["training_plan"]:
        both("/train-plan", schemas.TrainPlanRequest, train_plan, summary="Rank rigs for training", tags=["training"])
    if features()["plan"]:
        both("/plan", schemas.PlanRequest, plan, summary="Rank rigs for a model", tags=["plan"])
        both("/power", schemas.PowerRequest, power, summary="Power, PSU and circuits of a rig", tags=["power"])
    if features()["launch"]:
        both("/launch", schemas.LaunchRequest, launch, summary="Launch command for a setup", tags=["launch"])
    both("/gpus", schemas.GpusRequest, gpus, summary="List GPUs", tags=["catalogue"])

    @api.get("/gpus/{gpu_id}", tags=["catalogue"], summary="One GPU", operation_id="gpu_get")
    def gpu(gpu_id: Annotated[str, Path(max_length=schemas.MAX_NAME_CHARS)]) -> dict[str, Any]:
        """One GPU by id, alias or loose form ("4090")."""
        from ..rig import resolve_gpu

        catalog = load_catalog()
        found = resolve_gpu(gpu_id, catalog)
        view = next((v for v in catalog_views.list_gpus(catalog=catalog) if v.gpu.id == found.id), None)
        if view is None:  # pragma: no cover - resolve_gpu only returns catalogue GPUs
            raise UnknownGPUError(gpu_id)
        return catalog_views.gpu_dict(view)

    @api.get("/models", tags=["catalogue"], summary="List models", operation_id="models_get")
    def models() -> dict[str, Any]:
        """The model catalogue with architectures and sources (`rigplan models --json`)."""
        return _models_listing()

    @api.get("/models/{model_id}", tags=["catalogue"], summary="One model", operation_id="model_get")
    def model(model_id: Annotated[str, Path(max_length=schemas.MAX_NAME_CHARS)]) -> dict[str, Any]:
        """One catalogue model by id or alias."""
        from ..rig import resolve_model

        return catalog_views.model_dict(resolve_model(model_id, load_catalog()))

    @api.get("/quants", tags=["catalogue"], summary="List quant formats", operation_id="quants_get")
    def quants() -> dict[str, Any]:
        """Every quant id with its family and bits per weight."""
        return {
            "quants": [
                {
                    "id": q.id,
                    "family": q.family.value,
                    "bits_per_weight": q.bits_per_weight,
                    "description": q.description,
                }
                for q in catalog_views.list_quants()
            ]
        }

    @api.get("/meta", tags=["meta"], summary="What this server offers", operation_id="meta_get")
    def meta() -> dict[str, Any]:
        """Version, which optional parts are installed, and the choices the page offers."""
        from ..engines import ENGINES

        return {
            "version": __version__,
            "allow_paths": inputs.allow_paths,
            "allow_network": inputs.allow_network,
            "features": features(),
            "engines": list(ENGINES),
            "launch_engines": _launch_engines(),
            "limits": {
                "max_body_bytes": MAX_BODY_BYTES,
                "max_list_items": schemas.MAX_LIST_ITEMS,
                "max_gpus_per_type": schemas.MAX_GPUS_PER_TYPE,
            },
        }

    return api


def _launch_engines() -> list[str]:
    if not features()["launch"]:
        return []
    from ..integrations.launch import SERVE_ENGINES

    return list(SERVE_ENGINES)


def features() -> dict[str, bool]:
    """Optional parts of rigplan that other work adds; the page hides what is missing."""
    return {
        "plan": has_module("rigplan.planner"),
        "launch": has_module("rigplan.integrations.launch"),
        "training": has_module("rigplan.training.estimate"),
        "training_plan": has_module("rigplan.training.planner"),
    }


def create_app(
    *, allow_paths: bool = False, allow_network: bool = False, allowed_hosts: Sequence[str] | None = None
) -> FastAPI:
    """The rigplan web app.

    Args:
        allow_paths: let clients name local model files and folders (config.json, .gguf).
        allow_network: let clients name Hugging Face repo ids (fetched with huggingface_hub).
        allowed_hosts: Host headers to answer (DNS-rebinding guard); default loopback names,
            ``["*"]`` for any.

    >>> from fastapi.testclient import TestClient
    >>> TestClient(create_app(), base_url="http://127.0.0.1").get("/api/models").status_code
    200
    """
    app = FastAPI(
        title="rigplan",
        version=__version__,
        summary="Plan GPU rigs for LLMs: memory, speed, power and cost.",
        description="JSON API over rigplan's Python API. Every operation takes GET query "
        "parameters or a POST JSON body with the same fields. Errors carry the CLI's message "
        "in `detail`. Unknown ids give 404, invalid or unsupported input 422.",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; the page works offline instead
        redoc_url=None,
    )
    inputs = Inputs(allow_paths=allow_paths, allow_network=allow_network)
    app.state.inputs = inputs
    _install_error_handlers(app)
    app.include_router(build_api(inputs))

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html",
            media_type="text/html",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Any:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)
    app.add_middleware(RequestSizeLimit)
    return app
