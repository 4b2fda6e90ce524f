"""Guarded calls per second: tether.guard vs purgatory, in process and shared through Redis.

    .venv/bin/python benchmarks/guard_overhead.py [--seconds 2] [--rounds 3] [--concurrency 32]

Every contender wraps the same no-op coroutine, so what is measured is the guard's own cost:
``bare`` awaits it unguarded (``one redis GET``, a round trip to Redis, is the floor for a
shared store); ``tether`` is ``Guard.call`` (circuit breaker, no timeout);
``purgatory`` is ``async with await factory.get_breaker(name)`` (purgatory 3, the maintained
asyncio circuit breaker with a Redis backend). Each runs with in-process state and with state
in Redis (127.0.0.1:6379, redis-py asyncio for both), ``concurrency`` tasks calling back to
back for ``--seconds``, contenders interleaved for ``--rounds`` rounds, median reported.

Before timing, each breaker is checked to be one: after 5 failures a call is refused.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from purgatory import AsyncCircuitBreakerFactory, AsyncRedisUnitOfWork
from redis.asyncio import Redis

from tether.guard import BreakerPolicy, Guard, GuardRejected
from tether.guard.redis_store import RedisBreakerStore

REDIS_URL = os.environ.get("TETHER_BENCH_REDIS", "redis://127.0.0.1:6379/0")
Call = Callable[[], Awaitable[Any]]


async def work() -> int:
    return 1


async def broken() -> int:
    raise ConnectionError("down")


def tether_call(store: Any, name: str) -> Call:
    guard: Guard[int] = Guard(name, breaker=BreakerPolicy(failure_threshold=5), store=store)

    async def call(fn: Call = work) -> Any:
        return await guard.call(fn)

    return call


def purgatory_call(factory: AsyncCircuitBreakerFactory, name: str) -> Call:
    async def call(fn: Call = work) -> Any:
        async with await factory.get_breaker(name, threshold=5, ttl=30):
            return await fn()

    return call


async def is_a_breaker(make: Callable[[str], Call]) -> bool:
    call = make(f"check-{uuid.uuid4().hex[:8]}")
    for _ in range(5):
        with contextlib.suppress(ConnectionError):
            await call(broken)  # type: ignore[call-arg]
    try:
        await call()
    except (GuardRejected, Exception) as exc:
        return not isinstance(exc, ConnectionError)
    return False


async def measure(call: Call, seconds: float, concurrency: int) -> float:
    for _ in range(50):
        await call()
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def main(seconds: float, rounds: int, concurrency: int) -> None:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"tether:bench-guard:{uuid.uuid4().hex[:8]}:"
    tether_redis = RedisBreakerStore(redis, prefix=prefix)
    purgatory_memory = AsyncCircuitBreakerFactory()
    purgatory_redis = AsyncCircuitBreakerFactory(uow=AsyncRedisUnitOfWork(REDIS_URL))
    await purgatory_redis.initialize()
    makers: dict[str, Callable[[str], Call]] = {
        "bare": lambda name: work,
        "one redis GET": lambda name: lambda: redis.get(name),  # the floor for a shared store
        "tether, memory": lambda name: tether_call(None, name),
        "purgatory, memory": lambda name: purgatory_call(purgatory_memory, name),
        "tether, redis": lambda name: tether_call(tether_redis, name),
        "purgatory, redis": lambda name: purgatory_call(purgatory_redis, name),
    }
    for label, make in makers.items():
        if label not in ("bare", "one redis GET") and not await is_a_breaker(make):
            raise SystemExit(f"{label}: 5 failures did not open the circuit")
    calls = {label: make(f"bench-{uuid.uuid4().hex[:8]}") for label, make in makers.items()}
    rates: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(rounds):
        for label, call in calls.items():
            rates[label].append(await measure(call, seconds, concurrency))
    median = {label: statistics.median(r) for label, r in rates.items()}
    print(f"{'contender':<20} {'calls/s (median)':>18}  {'µs per call':>12}")
    for label, rate in median.items():
        print(f"{label:<20} {rate:>18,.0f}  {1e6 / rate:>12.1f}")
    for key in await redis.keys(prefix + "*"):
        await redis.delete(key)
    for key in await redis.keys("cbr::*"):  # purgatory's keys
        await redis.delete(key)
    await redis.aclose()
    print(
        json.dumps(
            {
                "bench": "guard_overhead",
                "tether": {
                    "memory_calls_s": round(median["tether, memory"]),
                    "redis_calls_s": round(median["tether, redis"]),
                },
                "peer": "purgatory",
                "purgatory": {
                    "memory_calls_s": round(median["purgatory, memory"]),
                    "redis_calls_s": round(median["purgatory, redis"]),
                },
                "bare_calls_s": round(median["bare"]),
                "redis_get_s": round(median["one redis GET"]),
                "ratio": {
                    "memory": round(median["tether, memory"] / median["purgatory, memory"], 2),
                    "redis": round(median["tether, redis"] / median["purgatory, redis"], 2),
                },
                "load_average": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.rounds, args.concurrency))
