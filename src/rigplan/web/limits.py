"""ASGI middleware that keeps requests small: bodies over a limit get 413, long URLs 414.

It is plain ASGI (no Starlette base class) so a large body is refused while it streams in,
before the app ever sees it, whether or not the client sent a Content-Length.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# No request rigplan understands comes near these: the largest JSON body (an estimate with every
# option) is under 1 KiB, the largest query string a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024
MAX_QUERY_BYTES = 8 * 1024


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail, "error": "RequestTooLarge"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestSizeLimit:
    """Refuse bodies over ``max_body_bytes`` (413) and query strings over ``max_query_bytes`` (414)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_query_bytes: int = MAX_QUERY_BYTES,
        larger_bodies: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_query_bytes = max_query_bytes
        self.larger_bodies = larger_bodies or {}  # path -> its own body limit (a GGUF header)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_body = self.larger_bodies.get(scope.get("path", ""), self.max_body_bytes)
        if len(scope.get("query_string", b"")) > self.max_query_bytes:
            await _reply(send, 414, f"query string over {self.max_query_bytes} bytes")
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > max_body
            except ValueError:
                await _reply(send, 400, "Content-Length is not a number")
                return
            if too_big:
                await _reply(send, 413, f"request body over {max_body} bytes")
                return
        # Read the body here (bounded), then replay it: a chunked body without a length is
        # counted as it arrives.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_body:
                await _reply(send, 413, f"request body over {max_body} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(
            scope, _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], receive), send
        )


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A ``receive`` that returns ``messages`` once, then defers to ``then`` (disconnects)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
