"""The FastAPI app: a JSON API over rigplan's public Python API, and the page that uses it.

Thin by design (style.md rule 1): each route checks its input with a pydantic model, calls
the public API, and returns the same dicts the CLI prints with ``--json``.  Errors become HTTP
statuses in :mod:`.errors` only.  Client input never reaches the filesystem or the network
unless the app was created with ``allow_paths`` / ``allow_network``.  The operations live in
:mod:`.estimate_ops`, :mod:`.plan_ops` and :mod:`.view_ops`; :mod:`.answers` runs them off the
event loop and caches their answers.
"""

from __future__ import annotations

import contextlib
import functools
import pathlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from rigplan import GGUF_HEADER_LIMIT_BYTES, __version__

from . import estimate_ops, plan_ops, schemas, view_ops
from .answers import GZIP_MIN_BYTES, AnswerCache, Workers
from .catalogue_routes import GGUF_UPLOAD_PATH, add_catalogue_routes, gpus
from .errors import ERRORS, install_error_handlers
from .fastpath import RepeatedGets
from .inputs import Inputs, features
from .limits import RequestSizeLimit
from .routing import Operations

__all__ = ["build_api", "create_app", "features"]

STATIC_DIR = pathlib.Path(__file__).parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
# The page loads only what the package ships: no CDN, no inline script.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# The longest a client waits for /api/vram and /api/what-fits (issue 16: answer or refuse within
# 3 s); past it, 422 with Retry-After while the answer is finished and cached.
SLOW_ANSWER_DEADLINE_S = 2.5


def build_api(
    inputs: Inputs, *, answers: AnswerCache | None = None, slow_deadline_s: float | None = SLOW_ANSWER_DEADLINE_S
) -> APIRouter:
    """The /api routes.  Each operation answers GET (query) and POST (JSON) alike."""
    api = APIRouter(prefix="/api", responses=ERRORS)
    ops = Operations(api, answers or AnswerCache())

    def add(path: str, model: type[schemas.Request], op: Callable[..., Any], *tags: str, **kw: Any) -> None:
        # A partial of a module-level function, not a closure: it pickles to a worker process.
        handler = functools.partial(op, inputs=inputs)
        ops.add(path, model, handler, tags=list(tags), description=op.__doc__, **kw)

    add("/estimate", schemas.EstimateRequest, estimate_ops.estimate, "estimate", summary="Estimate a model on a rig")
    add("/capacity", schemas.CapacityRequest, estimate_ops.capacity, "estimate", summary="Users a rig serves")
    add("/compare", schemas.CompareRequest, estimate_ops.compare, "estimate", summary="Compare rigs for one model")
    add("/scaling", schemas.ScalingRequest, estimate_ops.scaling, "estimate", summary="Speed and fit against GPU count")
    add("/sweep", schemas.SweepRequest, view_ops.sweep, "estimate", summary="Speed and memory against context or batch")
    slow = {"deadline_s": slow_deadline_s}
    add("/vram", schemas.VramRequest, estimate_ops.vram, "estimate", summary="Memory per quant and context", **slow)
    add("/what-fits", schemas.WhatFitsRequest, view_ops.what_fits, "plan", summary="What a rig can run", **slow)
    present = features()
    if present["training"]:
        add("/train", schemas.TrainRequest, plan_ops.train, "training", summary="Estimate one training setup")
    if present["training_plan"]:
        add("/train-plan", schemas.TrainPlanRequest, plan_ops.train_plan, "training", summary="Rank rigs for training")
    if present["plan"]:
        add("/plan", schemas.PlanRequest, plan_ops.plan, "plan", summary="Rank rigs for a model")
        add("/power", schemas.PowerRequest, plan_ops.power, "power", summary="Power, PSU and circuits of a rig")
    if present["launch"]:
        add("/launch", schemas.LaunchRequest, plan_ops.launch, "launch", summary="Launch command for a setup")
    add("/gpus", schemas.GpusRequest, gpus, "catalogue", summary="List GPUs")
    add_catalogue_routes(api, inputs)
    return api


def create_app(
    *,
    allow_paths: bool = False,
    allow_network: bool = False,
    allowed_hosts: Sequence[str] | None = None,
    slow_deadline_s: float | None = SLOW_ANSWER_DEADLINE_S,
    processes: bool = False,
) -> FastAPI:
    """The rigplan web app.

    Args:
        allow_paths: let clients name local model files and folders (config.json, .gguf).
        allow_network: let clients name Hugging Face repo ids (fetched with huggingface_hub).
        allowed_hosts: Host headers to answer (DNS-rebinding guard); default loopback names,
            ``["*"]`` for any.
        slow_deadline_s: the longest a client waits for /api/vram and /api/what-fits before a
            422 with ``Retry-After`` (None: no limit, for tests on a loaded machine).
        processes: answer uncached questions in one worker process per core (`rigplan
            serve`) rather than threads, which share one core through the GIL.

    >>> from fastapi.testclient import TestClient
    >>> TestClient(create_app(), base_url="http://127.0.0.1").get("/api/models").status_code
    200
    """
    answers = AnswerCache(workers=Workers(processes=processes))
    app = FastAPI(
        title="rigplan",
        version=__version__,
        summary="Plan GPU rigs for LLMs: memory, speed, power and cost.",
        description="JSON API over rigplan's Python API. Every operation takes GET query "
        "parameters or a POST JSON body with the same fields. Errors carry the CLI's message "
        "in `detail`. Unknown ids give 404, invalid or unsupported input 422, a full work "
        "queue 503 with `Retry-After`.",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; the page works offline instead
        redoc_url=None,
        lifespan=lambda _: _closing(answers.workers),
    )
    inputs = Inputs(allow_paths=allow_paths, allow_network=allow_network)
    app.state.inputs = inputs
    install_error_handlers(app)
    app.include_router(build_api(inputs, answers=answers, slow_deadline_s=slow_deadline_s))

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html",
            media_type="text/html",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RepeatedGets)
    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)
    app.add_middleware(RequestSizeLimit, larger_bodies={GGUF_UPLOAD_PATH: GGUF_HEADER_LIMIT_BYTES})
    return app


@contextlib.asynccontextmanager
async def _closing(workers: Workers) -> AsyncIterator[None]:
    # The worker processes start and end with the server.
    workers.open()
    try:
        yield
    finally:
        workers.close()


class SecurityHeaders:
    """Plain ASGI middleware adding ``nosniff`` and ``no-referrer`` to every response
    (Starlette's ``@app.middleware("http")`` would wrap each request in a task and a stream)."""

    HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", ())}
                message["headers"] = [*message.get("headers", ()), *(h for h in self.HEADERS if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)
