"""Answers of the pure operations: computed off the event loop by a bounded pool of workers,
kept as encoded JSON and its gzip, and refused with 503 + ``Retry-After`` when the queue is full.

Every operation is a pure function of its validated request, the shipped catalogue and the
user's files (config.toml, stored calibration), so an answer is reused until one of those files
changes.  A hit is served on the event loop at once (bytes: no encoding, no compression); a
miss is computed in one of :data:`COMPUTE_SLOTS` worker threads, once for any number of clients
asking the same question.  Errors are never cached.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import gzip
import json
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response

from . import schemas
from .errors import AnswerTooSlowError, ServerBusyError

# Answers kept per operation (a plan is ~100 KB of dicts: at most a few tens of MB in all).
ANSWER_CACHE_SIZE = 128
# Compress answers above this size (Starlette's default): the GPU list is ~60 KB of JSON.
GZIP_MIN_BYTES = 500
# zlib level for cached answers: 6 is zlib's default balance of size and time.
GZIP_LEVEL = 6
# Answers computed at once: one per core, so worker threads do not fight over the GIL.
COMPUTE_SLOTS = max(1, os.cpu_count() or 1)
# Distinct questions that may wait for a worker.  A plan takes ~0.1–0.5 s of one core, so a full
# queue is a few seconds of work: a request past it would wait longer than the 3 s the page
# promises, and is told to come back instead.
QUEUE_DEPTH = 8 * COMPUTE_SLOTS
# What a refused client is told to wait, at least: about the time a short queue takes to drain.
RETRY_AFTER_S = 2
# The longest a question may wait for a worker (issue 16: p99 under 3 s); past it, 503 at once.
MAX_QUEUE_WAIT_S = 2.0
# Weight of the newest answer in the moving average of answer times (about the last 5 answers).
WORK_TIME_WEIGHT = 0.2

UserFiles = tuple[tuple[str, int], ...]
Slot = tuple[str, UserFiles]  # (the validated request as JSON, the user files' signature)


class Encoded(NamedTuple):
    body: bytes
    gzipped: bytes


def encode(result: Any) -> Encoded:
    """The JSON of an answer and its gzip, made once."""
    raw = json.dumps(jsonable_encoder(result), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    body = raw.encode()
    return Encoded(body, gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0))


def encoded_response(answer: Encoded, request: Request) -> Response:
    """The cached JSON, gzipped when the client accepts it and it is worth it."""
    if "gzip" in request.headers.get("accept-encoding", "") and len(answer.body) >= GZIP_MIN_BYTES:
        headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return Response(answer.gzipped, media_type="application/json", headers=headers)
    return Response(answer.body, media_type="application/json", headers={"Vary": "Accept-Encoding"})


def user_files_signature() -> UserFiles:
    """(path, modification time) of each user file an answer may depend on."""
    out = []
    for path in _user_files(os.environ.get("HOME"), os.environ.get("XDG_CONFIG_HOME")):
        try:
            out.append((path, os.stat(path).st_mtime_ns))  # the server's own files, never a client's
        except OSError:
            out.append((path, 0))
    return tuple(out)


@functools.lru_cache(maxsize=16)
def _user_files(home: str | None, xdg_config_home: str | None) -> tuple[str, ...]:
    # Where the files are depends on these variables only (platformdirs); finding it costs
    # ~1 ms, a stat a few microseconds, so only the stat runs per request.
    from ..calibration.user import store_path
    from ..edge import user_config_path

    return (str(user_config_path()), str(store_path()))


Work = concurrent.futures.Future[Encoded]


class Workers:
    """A bounded pool: :data:`COMPUTE_SLOTS` threads; a question waits for one only while the
    expected wait stays under :data:`MAX_QUEUE_WAIT_S` (and at most :data:`QUEUE_DEPTH` wait)."""

    def __init__(self, slots: int = COMPUTE_SLOTS, queue_depth: int = QUEUE_DEPTH) -> None:
        self.slots = slots
        self.capacity = slots + queue_depth
        self.admitted = 0
        self.mean_work_s = 0.0  # moving average of one answer's time
        self.lock = threading.Lock()  # ``admitted`` drops in worker threads
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=slots, thread_name_prefix="rigplan-answer")

    def expected_wait_s(self) -> float:
        """How long a question admitted now would wait for a worker."""
        waiting = max(0, self.admitted - self.slots + 1)
        return waiting * self.mean_work_s / self.slots

    def start(self, work: Callable[[], Encoded]) -> Work:
        """``work()`` in a worker thread.  A thread-safe future: any event loop may await it
        (through :func:`asyncio.wrap_future`), and it runs on when its client goes away.

        Raises:
            ServerBusyError: the queue is full, or its wait past :data:`MAX_QUEUE_WAIT_S`.
        """
        with self.lock:
            wait_s = self.expected_wait_s()
            if self.admitted >= self.capacity or wait_s > MAX_QUEUE_WAIT_S:
                retry = max(RETRY_AFTER_S, math.ceil(wait_s))
                raise ServerBusyError(
                    f"the server is busy ({self.admitted} questions being answered); retry in {retry} s", retry
                )
            self.admitted += 1
        running = self.pool.submit(self._timed, work)
        running.add_done_callback(self._release)  # counted until the thread ends
        return running

    def _timed(self, work: Callable[[], Encoded]) -> Encoded:
        t0 = time.monotonic()
        try:
            return work()
        finally:
            took = time.monotonic() - t0
            with self.lock:
                self.mean_work_s += WORK_TIME_WEIGHT * (took - self.mean_work_s)

    def _release(self, _: object) -> None:
        with self.lock:
            self.admitted -= 1


class AnswerCache:
    """Recent answers by operation and request; misses computed by :class:`Workers`."""

    def __init__(self, size: int = ANSWER_CACHE_SIZE, workers: Workers | None = None) -> None:
        self.size = size
        self.workers = workers or Workers()

    def remember(
        self, handler: Callable[[Any], Any], *, deadline_s: float | None = None
    ) -> Callable[[Any, Request], Awaitable[Response]]:
        """An endpoint body that answers ``handler(request)`` from the cache or a worker.

        With ``deadline_s``, a client waits at most that long: then it gets 422 with
        ``Retry-After`` while the worker finishes and caches the answer for its next try.
        """
        store: collections.OrderedDict[Slot, Encoded] = collections.OrderedDict()
        pending: dict[Slot, Work] = {}
        lock = threading.Lock()  # answers land from worker threads

        def compute(key: str, request_model: type[schemas.Request]) -> Encoded:
            return encode(handler(request_model.model_validate_json(key)))

        def keep(slot: Slot, done: Work) -> None:
            with lock:
                pending.pop(slot, None)
                if not done.cancelled() and done.exception() is None:
                    store[slot] = done.result()
                    if len(store) > self.size:
                        store.popitem(last=False)

        def started(slot: Slot, request_model: type[schemas.Request]) -> Work:
            with lock:
                running = pending.get(slot)
                if running is None:  # else the same question is being answered: share its answer
                    running = self.workers.start(lambda: compute(slot[0], request_model))
                    pending[slot] = running
            running.add_done_callback(lambda done: keep(slot, done))
            return running

        async def answer(slot: Slot, request_model: type[schemas.Request]) -> Encoded:
            waiting = asyncio.shield(asyncio.wrap_future(started(slot, request_model)))
            if deadline_s is None:
                return await waiting
            try:
                return await asyncio.wait_for(waiting, deadline_s)
            except TimeoutError:
                raise AnswerTooSlowError(
                    f"this answer takes more than {deadline_s:g} s: ask for less (fewer quants, contexts "
                    f"or models), or ask again in {RETRY_AFTER_S} s, when the work under way may be done",
                    RETRY_AFTER_S,
                ) from None

        async def run(req: schemas.Request, request: Request) -> Response:
            slot = (req.model_dump_json(), user_files_signature())
            with lock:
                found = store.get(slot)
                if found is not None:
                    store.move_to_end(slot)
            if found is None:
                found = await answer(slot, type(req))
            request.state.rigplan_pure_answer = True  # fastpath.RepeatedGets may keep it
            return encoded_response(found, request)

        return run
