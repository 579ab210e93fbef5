"""One operation, two routes: GET with query parameters and POST with a JSON body, both
checked by the operation's request model and answered through the :class:`AnswerCache`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from . import schemas
from .answers import AnswerCache


class Operations:
    """Registers pure operations on ``api``, each answered from ``answers``."""

    def __init__(self, api: APIRouter, answers: AnswerCache) -> None:
        self.api = api
        self.answers = answers

    def add(
        self,
        path: str,
        request_model: type[schemas.Request],
        handler: Callable[[Any], Any],
        *,
        summary: str,
        tags: list[str],
        description: str | None = None,
        deadline_s: float | None = None,
    ) -> None:
        """Register ``handler`` for GET with query parameters and POST with a JSON body
        (``deadline_s``: the longest a client waits, see :meth:`AnswerCache.remember`)."""
        cached = self.answers.remember(handler, deadline_s=deadline_s)

        async def get(params: Any, request: Request) -> Any:
            return await cached(params, request)

        async def post(body: Any, request: Request, _: Any) -> Any:
            return await cached(body, request)

        # Real objects, not strings: annotations are postponed (PEP 563) and ``request_model``
        # is local, so FastAPI could not resolve the names.
        get.__annotations__ = {"params": Annotated[request_model, Query()], "request": Request, "return": Any}
        post.__annotations__ = {
            "body": request_model,
            "request": Request,
            "_": Annotated[None, Depends(strict_json(request_model))],
            "return": Any,
        }
        name = path.strip("/").replace("/", "_")
        text = description or handler.__doc__
        for method, endpoint, suffix in (("GET", get, ""), ("POST", post, " (JSON body)")):
            self.api.add_api_route(
                path,
                endpoint,
                methods=[method],
                summary=summary + suffix,
                tags=tags,
                operation_id=f"{name}_{method.lower()}",
                description=text,
            )


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
