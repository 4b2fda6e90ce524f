"""Requests/s of a trivial endpoint, bare vs behind each HTTP-edge middleware.

    .venv/bin/python benchmarks/http_edge.py [--driver both|asgi|uvicorn] [--seconds 0.5]
                                             [--rounds 5] [--concurrency 32]

The endpoint is a FastAPI ``POST /orders`` returning ``{"ok": true}``. Two drivers:

* ``asgi``: raw ASGI calls in this process (no server, no client library): the middleware's
  own cost with nothing around it. The strictest figure.
* ``uvicorn``: each case served by ``uvicorn`` (uvloop, h11) on 127.0.0.1 in its own process,
  loaded over ``--concurrency`` keep-alive connections by a minimal HTTP/1.1 client in this
  process: what a deployed app pays.

Each case runs ``--rounds`` times, interleaved with the others, for ``--seconds`` each, with
``--concurrency`` requests in flight; the figure is the median. This machine is shared and
busy, so throughput is counted per CPU-second of the process doing the serving (the ASGI
driver's own process, or the uvicorn server process): a neighbour stealing the CPU does not
change it. Requests per wall second are printed too. Idempotency runs send a fresh key per
request (non-replayed traffic) unless the row says "replayed". Redis: 127.0.0.1:6379.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.types import ASGIApp, Message

from tether.http.idempotency import IdempotencyMiddleware, MemoryIdempotencyStore
from tether.http.idempotency.stores.redis import RedisIdempotencyStore
from tether.http.ratelimit import (
    Algorithm,
    Limit,
    MemoryRateLimitStore,
    RateLimiter,
    RateLimitMiddleware,
    Rule,
    by_ip,
)
from tether.http.ratelimit.stores.redis import RedisRateLimitStore

REDIS_URL = os.environ.get("TETHER_BENCH_REDIS", "redis://127.0.0.1:6379/0")
HUGE = Limit("bench", 1_000_000_000, 3600)  # never refuses: we measure the admitted path
BODY = b'{"item": "tea"}'
# name -> how the client sends Idempotency-Key: none, a fresh one each time, always the same
CASES = {
    "bare": "none",
    "idempotency memory": "fresh",
    "idempotency redis": "fresh",
    "idempotency memory, replayed": "same",
    "ratelimit memory sliding": "none",
    "ratelimit redis sliding": "none",
    "ratelimit redis gcra": "none",
}


def trivial_app() -> FastAPI:
    app = FastAPI()

    @app.post("/orders")
    async def create() -> dict[str, bool]:
        return {"ok": True}

    return app


def build_case(name: str, prefix: str) -> ASGIApp:
    """The app for one case; Redis clients are made here, in the process that serves."""

    def redis() -> Redis:
        return Redis.from_pool(BlockingConnectionPool.from_url(REDIS_URL, max_connections=64))

    def limited(store: Any, algorithm: Algorithm = Algorithm.SLIDING_WINDOW) -> ASGIApp:
        return RateLimitMiddleware(
            trivial_app(), RateLimiter(store), [Rule(by_ip(), HUGE, algorithm)]
        )

    builders = {
        "bare": trivial_app,
        "idempotency memory": lambda: IdempotencyMiddleware(
            trivial_app(), MemoryIdempotencyStore()
        ),
        "idempotency redis": lambda: IdempotencyMiddleware(
            trivial_app(), RedisIdempotencyStore(redis(), prefix=prefix + "i:")
        ),
        "idempotency memory, replayed": lambda: IdempotencyMiddleware(
            trivial_app(), MemoryIdempotencyStore()
        ),
        "ratelimit memory sliding": lambda: limited(MemoryRateLimitStore()),
        "ratelimit redis sliding": lambda: limited(
            RedisRateLimitStore(redis(), prefix=prefix + "s:")
        ),
        "ratelimit redis gcra": lambda: limited(
            RedisRateLimitStore(redis(), prefix=prefix + "g:"), Algorithm.GCRA
        ),
    }
    return builders[name]()


def asgi_from_env() -> ASGIApp:
    """uvicorn factory: ``HTTP_EDGE_CASE`` names the case."""
    return build_case(os.environ["HTTP_EDGE_CASE"], os.environ["HTTP_EDGE_PREFIX"])


class Keys:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.run = uuid.uuid4().hex[:8]
        self.counter = itertools.count()

    def headers(self) -> list[tuple[bytes, bytes]]:
        base = [(b"content-type", b"application/json"), (b"authorization", b"Bearer bench")]
        if self.mode == "fresh":
            base.append((b"idempotency-key", f"{self.run}-{next(self.counter)}".encode()))
        elif self.mode == "same":
            base.append((b"idempotency-key", self.run.encode()))
        return base


# --------------------------------------------------------------------------- in-process ASGI


async def asgi_one(app: ASGIApp, keys: Keys) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/orders", "raw_path": b"/orders", "root_path": "",
        "query_string": b"", "headers": keys.headers(), "client": ("198.51.100.7", 50000),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    sent = False
    status = 0

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run_asgi(name: str, seconds: float, concurrency: int, prefix: str) -> tuple[float, float]:
    app, keys = build_case(name, prefix), Keys(CASES[name])
    for _ in range(200):  # warm-up: imports, caches, script loading
        assert await asgi_one(app, keys) == 200
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            assert await asgi_one(app, keys) == 200
            done += 1

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - start), done / (time.process_time() - cpu)


# --------------------------------------------------------------------------- uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def request_bytes(keys: Keys) -> bytes:
    head = [b"POST /orders HTTP/1.1", b"host: 127.0.0.1", b"content-length: %d" % len(BODY)]
    head += [k + b": " + v for k, v in keys.headers()]
    return b"\r\n".join(head) + b"\r\n\r\n" + BODY


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keys: Keys) -> int:
    """One request on a keep-alive connection, with a minimal HTTP/1.1 client: httpx costs
    several times the server's CPU per request, and the load generator shares the machine."""
    writer.write(request_bytes(keys))
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def run_uvicorn(
    name: str, seconds: float, concurrency: int, prefix: str
) -> tuple[float, float]:
    port = free_port()
    env = {**os.environ, "HTTP_EDGE_CASE": name, "HTTP_EDGE_PREFIX": prefix}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "http_edge:asgi_from_env", "--factory",
         "--app-dir", str(Path(__file__).parent), "--host", "127.0.0.1", "--port", str(port),
         "--loop", "uvloop", "--http", "h11", "--log-level", "warning", "--no-access-log"],
        env=env,
    )  # fmt: skip
    keys = Keys(CASES[name])
    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        async with asyncio.timeout(30):
            while not connections:
                with contextlib.suppress(OSError):
                    connections.append(await asyncio.open_connection("127.0.0.1", port))
                await asyncio.sleep(0.05)
        for _ in range(concurrency - 1):
            connections.append(await asyncio.open_connection("127.0.0.1", port))
        for reader, writer in connections:  # warm-up
            for _ in range(5):
                assert await exchange(reader, writer, keys) == 200
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                assert await exchange(reader, writer, keys) == 200
                done += 1

        start, cpu = time.perf_counter(), cpu_seconds(server.pid)
        await asyncio.gather(*(worker(r, w) for r, w in connections))
        wall, used = time.perf_counter() - start, cpu_seconds(server.pid) - cpu
        return done / wall, done / used
    finally:
        for _, writer in connections:
            writer.close()
        server.terminate()
        server.wait(timeout=10)


# --------------------------------------------------------------------------- main


async def main(drivers: list[str], seconds: float, rounds: int, concurrency: int) -> dict[str, Any]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    runners = {"asgi": run_asgi, "uvicorn": run_uvicorn}
    results: dict[str, Any] = {}
    try:
        for driver in drivers:
            wall: dict[str, list[float]] = {n: [] for n in CASES}
            cpu: dict[str, list[float]] = {n: [] for n in CASES}
            for _ in range(rounds):
                for name in CASES:
                    w, c = await runners[driver](name, seconds, concurrency, prefix)
                    wall[name].append(w)
                    cpu[name].append(c)
            walls = {n: statistics.median(v) for n, v in wall.items()}
            cpus = {n: statistics.median(v) for n, v in cpu.items()}
            head = f"{'case':<30} {'req/s':>9} {'vs bare':>7} {'req/cpu-s':>10} {'vs bare':>7}"
            print(f"\n[{driver}] {head}")
            for name, w in walls.items():
                c = cpus[name]
                print(
                    f"[{driver}] {name:<30} {w:>9,.0f} {w / walls['bare']:>7.1%}"
                    f" {c:>10,.0f} {c / cpus['bare']:>7.1%}"
                )
            results[driver] = {
                "rps_wall": {k: round(v) for k, v in walls.items()},
                "rps_per_cpu_second": {k: round(v) for k, v in cpus.items()},
                "ratio_cpu": {k: round(v / cpus["bare"], 3) for k, v in cpus.items()},
            }
    finally:
        redis = Redis.from_url(REDIS_URL)
        async for key in redis.scan_iter(match=prefix + "*", count=1000):
            await redis.delete(key)
        await redis.aclose()
    summary = {
        f"idempotency_memory_ratio_{d}": results[d]["ratio_cpu"]["idempotency memory"]
        for d in results
    }
    return {
        "bench": "idempotency_overhead",
        "endpoint": "FastAPI POST /orders -> {'ok': true}",
        "concurrency": concurrency,
        "seconds": seconds,
        "rounds": rounds,
        "python": platform.python_version(),
        **summary,
        "target_ratio": 0.85,
        "drivers": results,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--driver", choices=["both", "asgi", "uvicorn"], default="both")
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    chosen = ["asgi", "uvicorn"] if args.driver == "both" else [args.driver]
    result = asyncio.run(main(chosen, args.seconds, args.rounds, args.concurrency))
    print(json.dumps(result))
