"""Requests/s of a trivial endpoint, bare vs behind each HTTP-edge middleware.

    .venv/bin/python benchmarks/http_edge.py [--seconds 0.5] [--rounds 7] [--concurrency 32]

The ASGI app is driven in-process with raw ASGI calls (no HTTP server, no client library), so
the figures isolate the middleware's own cost; over a real socket the relative overhead is
smaller because the server's work is added to both sides. ``concurrency`` tasks each send
requests back to back for ``--seconds`` on uvloop; the cases run interleaved for ``--rounds``
rounds and each figure is the median. Two figures per case: requests per wall-clock second,
and requests per CPU-second of this process (robust on a shared, busy machine; it leaves out
the Redis server's own CPU, so for Redis rows the wall figure is the one to read). Idempotency
runs use a fresh key per request (non-replayed traffic) unless the row says "replayed".
Redis runs use 127.0.0.1:6379.
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
import statistics
import time
import uuid
from collections.abc import Callable
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


def trivial_app() -> ASGIApp:
    app = FastAPI()

    @app.post("/orders")
    async def create() -> dict[str, bool]:
        return {"ok": True}

    return app


class Driver:
    """Sends POST /orders with a small JSON body straight into the ASGI app."""

    def __init__(self, app: ASGIApp, key_mode: str) -> None:
        self.app = app
        self.key_mode = key_mode  # "none" | "fresh" | "same"
        self.counter = itertools.count()
        self.run_id = uuid.uuid4().hex[:8]

    def headers(self) -> list[tuple[bytes, bytes]]:
        base = [(b"content-type", b"application/json"), (b"authorization", b"Bearer bench")]
        if self.key_mode == "fresh":
            base.append((b"idempotency-key", f"{self.run_id}-{next(self.counter)}".encode()))
        elif self.key_mode == "same":
            base.append((b"idempotency-key", self.run_id.encode()))
        return base

    async def one(self) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/orders",
            "raw_path": b"/orders",
            "root_path": "",
            "query_string": b"",
            "headers": self.headers(),
            "client": ("198.51.100.7", 50000),
            "server": ("127.0.0.1", 8000),
        }
        sent = False
        status = 0

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b'{"item": "tea"}', "more_body": False}
            await asyncio.Event().wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        return status


async def measure(
    driver: Driver, seconds: float, concurrency: int
) -> tuple[float, float, dict[int, int]]:
    """(requests per wall second, requests per CPU second of this process, status counts)."""
    for _ in range(200):  # warm-up: imports, caches, script loading
        await driver.one()
    done = 0
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            status = await driver.one()
            statuses[status] = statuses.get(status, 0) + 1
            done += 1

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return done / wall, done / cpu, statuses


def redis_client() -> Redis:
    return Redis.from_pool(BlockingConnectionPool.from_url(REDIS_URL, max_connections=64))


async def main(seconds: float, rounds: int, concurrency: int) -> dict[str, Any]:
    redis = redis_client()
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    cases: list[tuple[str, Callable[[], ASGIApp], str]] = [
        ("bare", trivial_app, "none"),
        (
            "idempotency memory",
            lambda: IdempotencyMiddleware(trivial_app(), MemoryIdempotencyStore()),
            "fresh",
        ),
        (
            "idempotency redis",
            lambda: IdempotencyMiddleware(
                trivial_app(), RedisIdempotencyStore(redis, prefix=prefix + "i:")
            ),
            "fresh",
        ),
        (
            "idempotency memory, replayed",
            lambda: IdempotencyMiddleware(trivial_app(), MemoryIdempotencyStore()),
            "same",
        ),
        (
            "ratelimit memory sliding",
            lambda: RateLimitMiddleware(
                trivial_app(), RateLimiter(MemoryRateLimitStore()), [Rule(by_ip(), HUGE)]
            ),
            "none",
        ),
        (
            "ratelimit redis sliding",
            lambda: RateLimitMiddleware(
                trivial_app(),
                RateLimiter(RedisRateLimitStore(redis, prefix=prefix + "s:")),
                [Rule(by_ip(), HUGE)],
            ),
            "none",
        ),
        (
            "ratelimit redis gcra",
            lambda: RateLimitMiddleware(
                trivial_app(),
                RateLimiter(RedisRateLimitStore(redis, prefix=prefix + "g:")),
                [Rule(by_ip(), HUGE, Algorithm.GCRA)],
            ),
            "none",
        ),
    ]
    wall: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    codes: dict[str, dict[int, int]] = {}
    try:
        for _ in range(rounds):
            for name, factory, key_mode in cases:
                driver = Driver(factory(), key_mode)
                w, c, codes[name] = await measure(driver, seconds, concurrency)
                wall[name].append(w)
                cpu[name].append(c)
    finally:
        async for key in redis.scan_iter(match=prefix + "*", count=1000):
            await redis.delete(key)
        await redis.aclose()
    walls = {name: statistics.median(v) for name, v in wall.items()}
    cpus = {name: statistics.median(v) for name, v in cpu.items()}
    for name, w in walls.items():
        c = cpus[name]
        print(
            f"{name:<30} {w:>9,.0f} {w / walls['bare']:>7.1%}"
            f" {c:>10,.0f} {c / cpus['bare']:>7.1%}  {codes[name]}"
        )
    return {
        "bench": "idempotency_overhead",
        "driver": "in-process raw ASGI calls, FastAPI trivial POST endpoint, uvloop",
        "concurrency": concurrency,
        "seconds": seconds,
        "rounds": rounds,
        "python": platform.python_version(),
        "rps_wall": {k: round(v) for k, v in walls.items()},
        "rps_per_cpu_second": {k: round(v) for k, v in cpus.items()},
        "ratio_wall": {k: round(v / walls["bare"], 3) for k, v in walls.items()},
        "ratio_cpu": {k: round(v / cpus["bare"], 3) for k, v in cpus.items()},
        "idempotency_memory_ratio_cpu": round(cpus["idempotency memory"] / cpus["bare"], 3),
        "target_ratio": 0.85,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    print(f"{'case':<30} {'req/s':>9} {'vs bare':>7} {'req/cpu-s':>10} {'vs bare':>7}  statuses")
    result = asyncio.run(main(args.seconds, args.rounds, args.concurrency))
    print(json.dumps(result))
