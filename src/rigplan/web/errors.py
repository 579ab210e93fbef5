"""Errors become HTTP statuses here and only here: rigplan errors 404/422, Starlette's own
refusals in the same JSON shape, anything else a logged 500 (style.md rule 6)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from rigplan import DeviceError, InvalidValueError, RigplanError, UnknownNameError, UnsupportedError

log = logging.getLogger("rigplan.web")


class ErrorBody(BaseModel):
    """Every 4xx/5xx body: the CLI's one-line message and the error's class."""

    model_config = ConfigDict(extra="allow")
    detail: str
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A body that is not JSON, or a Host header other than loopback."},
    413: {"model": ErrorBody, "description": "A body over its limit (64 KiB; uploads 1 MiB)."},
    414: {"model": ErrorBody, "description": "A query string over 8 KiB."},
    404: {"model": ErrorBody, "description": "Unknown model, GPU, quant or engine (with suggestions)."},
    422: {
        "model": ErrorBody,
        "description": "Invalid or unsupported input, or more work than one request may do (then with "
        "`Retry-After` when the answer is still being worked out and will be cached).",
        "headers": {
            "Retry-After": {
                "description": "Seconds after which the answer may be ready.",
                "schema": {"type": "integer"},
            }
        },
    },
    500: {"model": ErrorBody, "description": "A bug in rigplan (logged with its traceback)."},
    503: {
        "model": ErrorBody,
        "description": "Every worker is busy and the queue is full; retry after the `Retry-After` seconds.",
        "headers": {
            "Retry-After": {"description": "Seconds to wait before asking again.", "schema": {"type": "integer"}}
        },
    },
}


class ServerBusyError(RigplanError):
    """Every worker is busy and the queue is full (HTTP 503 with ``Retry-After``)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AnswerTooSlowError(InvalidValueError):
    """An answer that takes longer than a client may wait (HTTP 422 with ``Retry-After``): the
    work goes on and is cached, so the same question asked again later is answered at once."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__("request", message)
        self.retry_after_s = retry_after_s


def status_for(exc: RigplanError) -> int:
    """The HTTP status of a rigplan error: unknown names 404, bad or unsupported input 422."""
    if isinstance(exc, UnknownNameError):
        return 404
    if isinstance(exc, ServerBusyError):
        return 503
    if isinstance(exc, InvalidValueError | UnsupportedError | DeviceError | ValueError):
        return 422
    return 400


def error_body(exc: RigplanError) -> dict[str, Any]:
    """The JSON body of a rigplan error: message, class, and the field or suggestions it carries."""
    body: dict[str, Any] = {"detail": str(exc), "error": type(exc).__name__}
    if isinstance(exc, UnknownNameError):
        body["name"] = exc.name
        body["suggestions"] = exc.suggestions
    if isinstance(exc, InvalidValueError):
        body["field"] = exc.field
    return body


def validation_message(errors: Sequence[Any]) -> str:
    """pydantic's errors as one line: ``field: why; other: why``."""
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query")]
        parts.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at the request's path (for 405's ``Allow``)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if getattr(route, "path", None) == request.url.path:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _on_rigplan_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RigplanError)
    retry = isinstance(exc, ServerBusyError | AnswerTooSlowError)
    headers = {"Retry-After": str(exc.retry_after_s)} if retry else None
    return JSONResponse(error_body(exc), status_code=status_for(exc), headers=headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    return JSONResponse(
        {"detail": validation_message(errors), "error": "ValidationError", "errors": jsonable_encoder(errors)},
        status_code=422,
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's own refusals (unknown route, wrong method, unreadable body), same shape.
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:  # Starlette names only the first route's methods
        headers["Allow"] = ", ".join(allowed_methods(request))
    return JSONResponse(
        {"detail": str(exc.detail), "error": "HTTPError"}, status_code=exc.status_code, headers=headers or None
    )


async def _on_bug(request: Request, exc: Exception) -> JSONResponse:
    # Anything else is a bug in rigplan: log it with its traceback, tell the client little.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"detail": "internal error: this is a bug in rigplan, please report it", "error": "InternalError"},
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception class to its handler above."""
    app.add_exception_handler(RigplanError, _on_rigplan_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_bug)
