"""Load test of the web API: N concurrent clients for T seconds against a server it starts on
127.0.0.1; prints requests/s, p50/p99 latency and the error count.

    python benchmarks/web_load.py --clients 16 --seconds 10

``--mix api`` (default) cycles through estimates, comparisons, the scaling sweep and catalogue
listings; ``--mix page`` repeats what one click on the page's Plan button asks for (the planner's
sweep, the scaling chart, the launch command and the power report); ``--mix plan`` asks four
plans over and over (answers come from the server's cache after the first); ``--mix
plan-distinct`` asks plans no one asked before (every request a planner sweep).  A 503 with
Retry-After (the server's work queue is full) is counted as refused, not as served (throughput
is answers per second; p50/p99 time the answered requests), and that client waits as told; the
load average is printed with each run, as the figures depend on it.

The server runs in its own process (uvicorn, one worker, as `rigplan serve` runs it, with one
answer process per core; ``--pool thread`` for the older thread pool), so the
clients do not share its interpreter.  Every request in the mix is valid: any answer other than
200, and any transport failure, counts as an error.  Bounded: at most 256 clients for at most
120 seconds, only against 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx

MAX_CLIENTS = 256
MAX_SECONDS = 120.0
START_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 60.0

# "api": the API's cheap-to-moderate calls, estimates and comparisons dominating.
API_MIX: list[tuple[str, dict[str, object]]] = [
    ("/api/estimate", {"model": "llama-3-70b", "rig": "2x rtx-4090", "quant": "4bit"}),
    ("/api/estimate", {"model": "llama-3-8b", "rig": "rtx-4090", "context": 8192}),
    ("/api/estimate", {"model": "mixtral-8x7b", "rig": "2x rtx-3090", "quant": "q4_k_m"}),
    ("/api/estimate", {"model": "llama-3.1-70b", "rig": "2x h100-sxm", "engine": "vllm", "batch": 32}),
    ("/api/estimate", {"model": "qwen2.5-32b", "rig": "rtx-4090 + rtx-3090", "context": 16384}),
    ("/api/estimate", {"model": "deepseek-v3", "rig": "2 nodes x 8x h100-sxm", "engine": "vllm", "quant": "fp8"}),
    (
        "/api/compare",
        {"model": "llama-3-70b", "quant": "4bit", "rig": ["2x rtx-3090", "rtx-5090", "rtx-6000-ada", "m2-ultra-192gb"]},
    ),
    ("/api/scaling", {"model": "llama-3-70b", "quant": "4bit", "gpu": ["rtx-4090", "rtx-3090"]}),
    ("/api/gpus", {"sort": "bandwidth"}),
    ("/api/models", {}),
    ("/", {}),
]
# "page": what one click on "Plan" costs: the planner's sweep, then the charts and the launch command.
PAGE_MIX: list[tuple[str, dict[str, object]]] = [
    ("/api/plan", {"model": "llama-3-70b", "quant": "4bit", "top": 10}),
    ("/api/scaling", {"model": "llama-3-70b", "quant": "q4_k_m", "gpu": ["tesla-p40", "rtx-3090", "m4-max-128gb"]}),
    ("/api/launch", {"model": "llama-3-70b", "rig": "2x tesla-p40", "quant": "q4_k_m"}),
    ("/api/power", {"rig": "2x tesla-p40", "kwh_price": 0.3}),
]
# "plan": what the page asks most, a plan, for several models and constraints (issue 16's figure:
# throughput with 64 clients against one client).
PLAN_MIX: list[tuple[str, dict[str, object]]] = [
    ("/api/plan", {"model": "llama-3-70b", "quant": "4bit", "top": 10}),
    ("/api/plan", {"model": "llama-3-8b", "top": 10}),
    ("/api/plan", {"model": "mixtral-8x7b", "quant": "8bit", "budget": 6000}),
    ("/api/plan", {"model": "qwen2.5-32b", "context": 16384, "users": 4}),
]
MIXES = {"api": API_MIX, "page": PAGE_MIX, "plan": PLAN_MIX, "plan-distinct": PLAN_MIX}
# "plan-distinct": the plan mix with a budget no one asked before in every request, so no answer
# comes from the server's cache: every request is a planner sweep.
DISTINCT_MIXES = {"plan-distinct"}


@dataclass
class Tally:
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    refused: int = 0  # 503 + Retry-After: the server's queue was full; the client waits and asks again
    first_errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, pool: str) -> subprocess.Popen[bytes]:
    code = (
        "import uvicorn; from rigplan.web import create_app; "
        f"uvicorn.run(create_app(processes={pool == 'process'}), host='127.0.0.1', port={port}, log_level='warning')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/meta", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


_distinct = iter(range(1, 10**9))


class Connection:
    """One keep-alive HTTP/1.1 connection, as a browser holds one: a plain GET and the whole
    response read by its Content-Length.  Far cheaper per request than httpx, so that with 64
    clients on two cores the figures time the server, not the load generator."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, params: dict[str, object]) -> tuple[int, dict[str, str], bytes]:
        target = f"{path}?{urlencode(params, doseq=True)}" if params else path
        request = f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\nAccept-Encoding: gzip\r\n\r\n".encode()
        reused = self.writer is not None
        try:
            head = await self._send(request)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not reused:
                raise
            # The server closed an idle keep-alive connection (uvicorn: after 5 s), as it may:
            # open a new one and ask again, as a browser does.
            await self.close()
            head = await self._send(request)
        assert self.reader is not None
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers, body

    async def _send(self, request: bytes) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        return await self.reader.readuntil(b"\r\n\r\n")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def client(
    conn: Connection,
    mix: list[tuple[str, dict[str, object]]],
    index: int,
    stop_at: float,
    tally: Tally,
    distinct: bool = False,
) -> None:
    i = index
    while time.monotonic() < stop_at:
        path, params = mix[i % len(mix)]
        i += 1
        if distinct:  # a budget never asked before: the answer cannot come from the cache
            params = {**params, "budget": 1_000_000 + next(_distinct)}
        t0 = time.perf_counter()
        try:
            status, headers, body = await asyncio.wait_for(conn.get(path, params), REQUEST_TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            tally.error(f"{path}: {type(exc).__name__}: {exc}")
            await conn.close()
            continue
        if status == 503 and "retry-after" in headers:
            tally.refused += 1
            await asyncio.sleep(float(headers["retry-after"]))
            continue
        tally.latencies_s.append(time.perf_counter() - t0)
        if status != 200:
            tally.error(f"{path} {params}: HTTP {status} {body[:200]!r}")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


async def run_load(
    base: str, mix: list[tuple[str, dict[str, object]]], clients: int, seconds: float, warmup_s: float, distinct: bool
) -> tuple[Tally, float]:
    """Warm up (each request of the mix once, in turn, then ``warmup_s`` of load), then
    ``clients`` concurrent request loops for ``seconds``, each on its own keep-alive connection
    (made once, so the measured window times the server only)."""
    host, port = base.removeprefix("http://").split(":")
    conns = [Connection(host, int(port)) for _ in range(clients)]
    try:
        for path, params in mix:  # first answers (and imports) before any timing
            await conns[0].get(path, params)
        await asyncio.gather(
            *(client(c, mix, i, time.monotonic() + warmup_s, Tally(), distinct) for i, c in enumerate(conns))
        )
        tally = Tally()
        t0 = time.monotonic()
        await asyncio.gather(*(client(c, mix, i, t0 + seconds, tally, distinct) for i, c in enumerate(conns)))
        return tally, time.monotonic() - t0
    finally:
        for c in conns:
            await c.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=[16],
        help=f"concurrent clients (1–{MAX_CLIENTS}); several: one run each",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help=f"measured duration (≤ {MAX_SECONDS:g})")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured warm-up")
    parser.add_argument("--mix", choices=sorted(MIXES), default="api", help="which requests (see the module)")
    parser.add_argument(
        "--pool",
        choices=("process", "thread"),
        default="process",
        help="the server's workers: one process per core (as `rigplan serve`) or threads",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not all(1 <= n <= MAX_CLIENTS for n in args.clients):
        parser.error(f"--clients must be 1–{MAX_CLIENTS}")
    if not 0 < args.seconds <= MAX_SECONDS or not 0 <= args.warmup <= MAX_SECONDS:
        parser.error(f"--seconds must be in (0, {MAX_SECONDS:g}]")

    errors = 0
    results = []
    for clients in args.clients:
        result, tally = measure(args.mix, clients, args.seconds, args.warmup, args.pool)
        results.append(result)
        errors += tally.errors
        if not args.json:
            print(
                f"{result['mix']} mix, {result['pool']} pool, {result['clients']} clients × {result['seconds']} s: "
                f"{result['requests']} answered, {result['requests_per_s']} answered/s, "
                f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, errors {result['errors']}, "
                f"refused (503) {result['refused_503']}, load average {result['load_average_1m']}"
            )
        for line in tally.first_errors:
            print(f"  error: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    elif len(results) > 1:
        base = results[0]["requests_per_s"] or 1.0
        for r in results[1:]:
            ratio = r["requests_per_s"] / base
            print(
                f"{r['clients']} clients get {ratio:.2f}× the answers per second of {results[0]['clients']} "
                "(refused requests count as nothing served)"
            )
    return 1 if errors else 0


def measure(mix: str, clients: int, seconds: float, warmup: float, pool: str) -> tuple[dict[str, object], Tally]:
    """One server, one load of ``clients`` for ``seconds``: the figures and the tally."""
    port = free_port()
    server = start_server(port, pool)
    try:
        tally, elapsed = asyncio.run(
            run_load(f"http://127.0.0.1:{port}", MIXES[mix], clients, seconds, warmup, mix in DISTINCT_MIXES)
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    lat = sorted(tally.latencies_s)
    result = {
        "mix": mix,
        "pool": pool,
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": len(lat),
        "requests_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 1),
        "p99_ms": round(percentile(lat, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else None,
        "errors": tally.errors,
        "refused_503": tally.refused,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    return result, tally


if __name__ == "__main__":
    sys.exit(main())
