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
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response

from rigplan import RigplanError

from . import schemas, uploads
from .errors import AnswerTooSlowError, ServerBusyError
from .uploads import Carried

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
# The longest a queued question may take, its expected wait for a worker plus its own work
# (issue 16: p99 under 3 s, less ~0.5 s for the server's own handling); past it, 503 at once.
MAX_QUEUE_WAIT_S = 2.5
# What a new worker process plans once before its first question (a small model: ~0.3 s).
WARM_UP_MODEL = "llama-3-8b"
WARM_UP_BUDGET_USD = 123_457  # a budget no client asks, so the timed plan is really computed
# Weight of the newest answer in the moving average of answer times (about the last 5 answers).
WORK_TIME_WEIGHT = 0.2
# ... when an answer took longer than the average: the estimate rises at once and falls slowly,
# so that a machine that slows down (other work on its cores) is refused early, not late.
WORK_TIME_RISE_WEIGHT = 0.7
# The answer time assumed before any is measured: a plan's time on a loaded core (issue 16's
# measures: 0.4 s idle, 1–2 s with the two cores shared).  Worker processes replace it with the
# time of their warm-up plan.
PRIOR_WORK_S = 1.0

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
    from rigplan import calibration_store_path, user_config_path

    return (str(user_config_path()), str(calibration_store_path()))


Work = concurrent.futures.Future[Any]


class Workers:
    """A bounded pool of :data:`COMPUTE_SLOTS` workers: threads, or with ``processes`` one
    interpreter each (pure CPU-bound Python: threads share one core through the GIL, and starve
    the event loop while they run).  A question waits for a worker only while its expected wait
    plus its own work stays under :data:`MAX_QUEUE_WAIT_S`, and at most :data:`QUEUE_DEPTH` wait;
    a free worker takes any question.

    In process mode the work must pickle: a module-level function with plain arguments
    (:func:`answer_of` with the validated request's JSON), never a closure.
    """

    def __init__(self, slots: int = COMPUTE_SLOTS, queue_depth: int = QUEUE_DEPTH, *, processes: bool = False) -> None:
        self.slots = slots
        self.capacity = slots + queue_depth
        self.processes = processes
        self.admitted = 0
        self.mean_work_s = PRIOR_WORK_S  # moving average of any answer's time, pessimistic
        self.work_s: dict[str, float] = {}  # the same by kind of question (operation and model)
        self.pending_s = 0.0  # expected work of the questions admitted and not answered
        self.lock = threading.Lock()  # ``admitted`` drops in callback threads
        self.closed = False
        self.pool = self._new_pool()

    def open(self) -> None:
        """Start the workers again after :meth:`close` (an app started twice, as tests do);
        worker processes start now and import rigplan before the first question."""
        if self.closed:
            self.pool, self.closed = self._new_pool(), False
        if self.processes:
            for _ in range(self.slots):
                self.pool.submit(warm_up).add_done_callback(self._warmed)

    def _new_pool(self) -> concurrent.futures.Executor:
        if not self.processes:
            return concurrent.futures.ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="rigplan-answer")
        # "spawn": a fresh interpreter, as on macOS and Windows; forking a process that runs an
        # event loop and threads could copy a held lock.
        context = multiprocessing.get_context("spawn")
        return concurrent.futures.ProcessPoolExecutor(self.slots, mp_context=context, initializer=ignore_interrupts)

    def expected_s(self, kind: str) -> float:
        """How long a question of ``kind`` takes to answer (the slower of its own and any
        question's average, until it has its own)."""
        return self.work_s.get(kind, self.mean_work_s)

    def expected_wait_s(self) -> float:
        """How long a question admitted now would wait for a worker: the expected work of
        those admitted, shared by the workers (none while one is free)."""
        return 0.0 if self.admitted < self.slots else self.pending_s / self.slots

    def start(self, work: Callable[[], Any], kind: str = "") -> Work:
        """``work()`` in a worker.  A thread-safe future: any event loop may await it
        (through :func:`asyncio.wrap_future`), and it runs on when its client goes away.

        Raises:
            ServerBusyError: the queue is full, or its wait past :data:`MAX_QUEUE_WAIT_S`.
        """
        with self.lock:
            wait_s, own_s = self.expected_wait_s(), self.expected_s(kind)
            queued = self.admitted >= self.slots
            if self.admitted >= self.capacity or (queued and wait_s + own_s > MAX_QUEUE_WAIT_S):
                retry = max(RETRY_AFTER_S, math.ceil(wait_s))
                raise ServerBusyError(
                    f"the server is busy ({self.admitted} questions being answered); retry in {retry} s", retry
                )
            self.admitted += 1
            self.pending_s += own_s
        try:
            running = self.pool.submit(timed, work, self.processes)
        except concurrent.futures.BrokenExecutor:  # a worker process died (killed, out of memory)
            self.pool = self._new_pool()
            running = self.pool.submit(timed, work, self.processes)
        answer: Work = concurrent.futures.Future()
        running.add_done_callback(lambda done: self._finish(done, answer, kind, own_s))  # counted until it ends
        return answer

    def _finish(self, done: concurrent.futures.Future[Timed], answer: Work, kind: str, expected_s: float) -> None:
        with self.lock:
            self.admitted -= 1
            self.pending_s = max(0.0, self.pending_s - expected_s)
            failure = done.exception()
            if failure is None:
                self.observe(done.result().took_s, kind)
        if failure is not None:
            answer.set_exception(failure)
        elif isinstance(done.result().value, Failure):
            answer.set_exception(done.result().value.rebuilt())
        else:
            answer.set_result(done.result().value)

    def observe(self, took_s: float, kind: str = "") -> None:
        """Move the answer-time estimates (any question's, and ``kind``'s) towards ``took_s``
        (call with the lock held)."""
        self.mean_work_s = _moved(self.mean_work_s, took_s)
        if kind:
            self.work_s[kind] = _moved(self.work_s.get(kind, took_s), took_s)

    def _warmed(self, done: concurrent.futures.Future[float | None]) -> None:
        if not done.cancelled() and done.exception() is None and done.result() is not None:
            with self.lock:
                self.observe(done.result())

    def close(self) -> None:
        """Stop the workers (queued work is dropped)."""
        self.closed = True
        self.pool.shutdown(wait=True, cancel_futures=True)  # waits for the answers under way


def _moved(estimate_s: float, took_s: float) -> float:
    weight = WORK_TIME_RISE_WEIGHT if took_s > estimate_s else WORK_TIME_WEIGHT
    return estimate_s + weight * (took_s - estimate_s)


class Timed(NamedTuple):
    value: Any  # the answer, or a Failure from a worker process
    took_s: float


class Failure(NamedTuple):
    """An error raised in a worker process, sent back as its class and state: rigplan's errors
    take other arguments than their ``args``, so they would not unpickle as they are."""

    kind: type[BaseException]
    args: tuple[Any, ...]
    state: dict[str, Any]

    def rebuilt(self) -> BaseException:
        exc = self.kind.__new__(self.kind)
        exc.args = self.args
        for name, value in self.state.items():
            setattr(exc, name, value)
        return exc


def timed(work: Callable[[], Any], portable: bool) -> Timed:
    """``work()`` and its time; in a worker process (``portable``) an error comes back as a
    :class:`Failure` that pickles, and a bug with its traceback in the message."""
    t0 = time.monotonic()
    try:
        value = work()
    except Exception as exc:
        if not portable:
            raise
        value = failure_of(exc)
    return Timed(value, time.monotonic() - t0)


def failure_of(exc: Exception) -> Failure:
    """A picklable :class:`Failure` for ``exc`` (a RuntimeError with the traceback if not)."""
    if isinstance(exc, RigplanError):
        found = Failure(type(exc), exc.args, dict(getattr(exc, "__dict__", {})))
        try:
            pickle.dumps(found)
            return found
        except Exception:  # an attribute that does not pickle: keep the message
            pass
    text = "".join(traceback.format_exception(exc)) if not isinstance(exc, RigplanError) else str(exc)
    kind = type(exc) if isinstance(exc, RigplanError) else RuntimeError
    return Failure(kind, (text,), {})


def warm_up() -> float | None:
    """Import what the answers need and fill the core's caches (catalogue, speed profiles), in
    a worker process before its first question; then time one plan, the server's first
    measure of an answer's time (None without the planner)."""
    from rigplan import load_catalog

    load_catalog()
    try:
        from rigplan import plan_rigs
    except ImportError:  # the planner is optional
        return None
    plan_rigs(WARM_UP_MODEL, top=1)  # the first fills per-model caches
    t0 = time.monotonic()
    plan_rigs(WARM_UP_MODEL, top=1, budget_usd=WARM_UP_BUDGET_USD)  # not a cached answer
    return time.monotonic() - t0


def ignore_interrupts() -> None:
    """Worker processes leave Ctrl-C to the server, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def answer_of(
    handler: Callable[[Any], Any], request_model: type[schemas.Request], key: str, carried: Carried
) -> Encoded:
    """The encoded answer of ``handler`` to the request whose JSON is ``key``; ``carried``: the
    uploaded models it names, for a worker process that does not hold them."""
    uploads.restore(carried)
    return encode(handler(request_model.model_validate_json(key)))


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

        def keep(slot: Slot, done: Work) -> None:
            with lock:
                pending.pop(slot, None)
                if not done.cancelled() and done.exception() is None:
                    store[slot] = done.result()
                    if len(store) > self.size:
                        store.popitem(last=False)

        operation = getattr(handler, "func", handler).__name__

        def started(slot: Slot, req: schemas.Request) -> Work:
            request_model = type(req)
            with lock:
                running = pending.get(slot)
                if running is None:  # else the same question is being answered: share its answer
                    job = functools.partial(answer_of, handler, request_model, slot[0], uploads.referenced(slot[0]))
                    # Answer times are kept by operation and model: a 405B plan is not an 8B one.
                    running = self.workers.start(job, kind=f"{operation}:{getattr(req, 'model', '')}")
                    pending[slot] = running
            running.add_done_callback(lambda done: keep(slot, done))
            return running

        async def answer(slot: Slot, req: schemas.Request) -> Encoded:
            waiting = asyncio.shield(asyncio.wrap_future(started(slot, req)))
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
                found = await answer(slot, req)
            request.state.rigplan_pure_answer = True  # fastpath.RepeatedGets may keep it
            return encoded_response(found, request)

        return run
