"""A GET asked before is answered before any routing or validation: the bytes of the earlier
answer, kept by URL, accepted encoding and the user files' signature.

Only answers of the pure operations are kept (the :class:`~.answers.AnswerCache` marks them in
the request's state), so a URL always names the same validated request and the same answer.
With 64 clients asking the page's usual questions, nearly every request is such a repeat.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import MutableMapping
from typing import Any

from .answers import user_files_signature
from .limits import ASGIApp, Message, Receive, Scope, Send

#: Answers kept (each one encoding of one URL; a plan is ~15 KB gzipped, ~100 KB plain).
FAST_ANSWERS = 512
#: The state key the answer cache sets on a pure operation's answer.
PURE = "rigplan_pure_answer"

Key = tuple[str, bytes, bool, tuple[tuple[str, int], ...]]


class RepeatedGets:
    """ASGI middleware: replay the kept answer of a repeated GET under /api/."""

    def __init__(self, app: ASGIApp, *, size: int = FAST_ANSWERS) -> None:
        self.app = app
        self.size = size
        self.kept: collections.OrderedDict[Key, tuple[list[Any], bytes]] = collections.OrderedDict()
        self.lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        key: Key = (
            scope["path"],
            scope.get("query_string", b""),
            b"gzip" in headers.get(b"accept-encoding", b""),
            user_files_signature(),
        )
        with self.lock:
            found = self.kept.get(key)
            if found is not None:
                self.kept.move_to_end(key)
        if found is not None:
            await send({"type": "http.response.start", "status": 200, "headers": found[0]})
            await send({"type": "http.response.body", "body": found[1]})
            return
        await self.app(scope, receive, self._keeping(scope, key, send))

    def _keeping(self, scope: Scope, key: Key, send: Send) -> Send:
        start: MutableMapping[str, Any] = {}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state = scope.get("state") or {}
                if start.get("status") == 200 and state.get(PURE):
                    self._keep(key, list(start.get("headers", [])), bytes(message.get("body", b"")))
            await send(message)

        return capture

    def _keep(self, key: Key, headers: list[Any], body: bytes) -> None:
        with self.lock:
            self.kept[key] = (headers, body)
            while len(self.kept) > self.size:
                self.kept.popitem(last=False)
