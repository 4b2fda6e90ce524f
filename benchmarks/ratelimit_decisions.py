"""Rate-limit decisions per second on one Redis: Tether vs ``limits`` vs ``throttled-py``.

    .venv/bin/python benchmarks/ratelimit_decisions.py [--seconds 2] [--rounds 3] [--concurrency 64]

Every contender makes the same decisions in the same process and event loop (uvloop): the
``api_key`` preset (10,000 per hour) over 1,000 keys, ``concurrency`` tasks deciding back to
back for ``--seconds``, contenders interleaved for ``--rounds`` rounds, median reported. All use
redis-py's asyncio client against 127.0.0.1:6379 (``limits`` with ``implementation="redispy"``).

The decisions are checked, not just counted. Before timing, each contender is built again with
a limit of 5 per hour and asked 8 times, concurrently, for each of 50 fresh keys: exactly 5
must be allowed per key. While timing, every decision must be an allow (no key gets near
10,000 hits), and afterwards each contender's keys must be in Redis: the work reached Redis.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from limits import RateLimitItemPerHour
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from redis.asyncio import Redis
from throttled.asyncio import RedisStore, Throttled, per_hour

from tether.http.ratelimit import API_KEY, Algorithm, Limit
from tether.http.ratelimit.stores.redis import RedisRateLimitStore

REDIS_URL = os.environ.get("TETHER_BENCH_REDIS", "redis://127.0.0.1:6379/0")
KEYS = [f"client-{i}" for i in range(1000)]
Decide = Callable[[str], Awaitable[bool]]
Contender = Callable[[str, Limit], Decide]  # (key prefix, limit) -> decide(key)
CHECK_LIMIT = Limit("check", 5, 3600)
CHECK_KEYS, CHECK_TRIES = 50, 8


async def measure(decide: Decide, seconds: float, concurrency: int) -> tuple[float, int, int]:
    """Decisions per second, and how many were made and allowed."""
    for key in KEYS[:100]:  # warm-up: connections, script loading
        await decide(key)
    done = allowed = 0
    deadline = time.perf_counter() + seconds

    async def worker(seed: int) -> None:
        nonlocal done, allowed
        rng = random.Random(seed)
        while time.perf_counter() < deadline:
            ok = await decide(rng.choice(KEYS))  # not `allowed += await`: tasks interleave
            allowed += ok
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / (time.perf_counter() - start), done, allowed


async def check_decisions(name: str, contender: Contender, prefix: str) -> None:
    """Exactly ``CHECK_LIMIT.limit`` of ``CHECK_TRIES`` concurrent hits on a key are allowed."""
    decide = contender(prefix, CHECK_LIMIT)
    for key in range(CHECK_KEYS):
        answers = await asyncio.gather(*(decide(f"check-{key}") for _ in range(CHECK_TRIES)))
        allowed = sum(answers)
        assert allowed == CHECK_LIMIT.limit, f"{name}: {allowed} of {CHECK_TRIES} allowed"


def tether(redis: Redis, algorithm: Algorithm, batch: bool) -> Contender:
    def build(prefix: str, limit: Limit) -> Decide:
        store = RedisRateLimitStore(redis, prefix=prefix, batch=batch)

        async def decide(key: str) -> bool:
            return (await store.hit(key, limit, algorithm)).allowed

        return decide

    return build


def limits_contender(moving: bool) -> Contender:
    return lambda prefix, limit: _limits(prefix, limit, moving)


def throttled_contender(using: str) -> Contender:
    return lambda prefix, limit: _throttled(prefix, limit, using)


def _limits(prefix: str, limit: Limit, moving: bool) -> Decide:
    storage = RedisStorage(
        "async+" + REDIS_URL, implementation="redispy", key_prefix=prefix, max_connections=64
    )
    strategy = (
        MovingWindowRateLimiter(storage) if moving else SlidingWindowCounterRateLimiter(storage)
    )
    assert limit.period == 3600
    item = RateLimitItemPerHour(limit.limit)

    async def decide(key: str) -> bool:
        return await strategy.hit(item, key)

    return decide


def _throttled(prefix: str, limit: Limit, using: str) -> Decide:
    store = RedisStore(
        server=REDIS_URL, options={"CONNECTION_POOL_KWARGS": {"max_connections": 64}}
    )
    assert limit.period == 3600
    limiter = Throttled(using=using, quota=per_hour(limit.limit), store=store, key_prefix=prefix)

    async def decide(key: str) -> bool:
        return not (await limiter.limit(key)).limited

    return decide


async def main(seconds: float, rounds: int, concurrency: int) -> dict[str, Any]:
    # The same plain pool as the peers get (64 connections for 64 tasks: nobody ever waits).
    redis = Redis.from_url(REDIS_URL, max_connections=64)
    run = uuid.uuid4().hex[:8]
    contenders: dict[str, tuple[Contender, str]] = {  # name -> (contender, key prefix)
        "tether sliding_window": (tether(redis, Algorithm.SLIDING_WINDOW, True), "ts"),
        "tether gcra": (tether(redis, Algorithm.GCRA, True), "tg"),
        "tether sliding_window, unbatched": (tether(redis, Algorithm.SLIDING_WINDOW, False), "tu"),
        "limits moving_window": (limits_contender(moving=True), "lm"),
        "limits sliding_window_counter": (limits_contender(moving=False), "ls"),
        "throttled-py sliding_window": (throttled_contender("sliding_window"), "ps"),
        "throttled-py gcra": (throttled_contender("gcra"), "pg"),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    made: dict[str, int] = dict.fromkeys(contenders, 0)
    try:
        for name, (contender, tag) in contenders.items():
            await check_decisions(name, contender, f"bench{run}check{tag}")
        timed = {
            name: contender(f"bench{run}{tag}", API_KEY)
            for name, (contender, tag) in contenders.items()
        }
        for _ in range(rounds):
            for name, decide in timed.items():
                per_s, done, allowed = await measure(decide, seconds, concurrency)
                assert allowed == done, f"{name}: {done - allowed} of {done} denied under the limit"
                samples[name].append(per_s)
                made[name] += done
        for name, (_, tag) in contenders.items():
            stored = [key async for key in redis.scan_iter(match=f"*bench{run}{tag}*", count=1000)]
            assert stored, f"{name}: no key of its in Redis after {made[name]} decisions"
    finally:
        async for key in redis.scan_iter(match=f"*bench{run}*", count=1000):
            await redis.delete(key)
        await redis.aclose()
    print(
        f"decisions checked: {CHECK_LIMIT.limit} of {CHECK_TRIES} allowed on each of "
        f"{CHECK_KEYS} keys per contender; every timed decision an allow; keys found in Redis"
    )
    rows = {name: statistics.median(values) for name, values in samples.items()}
    peers = {k: v for k, v in rows.items() if not k.startswith("tether")}
    best_peer = max(peers, key=peers.__getitem__)
    for name, value in rows.items():
        print(f"{name:<36} {value:>12,.0f} decisions/s  {value / rows[best_peer]:>5.2f}x best peer")
    ours = rows["tether sliding_window"]
    return {
        "bench": "ratelimit_decisions",
        "limit": "10000/hour over 1000 keys",
        "concurrency": concurrency,
        "seconds": seconds,
        "rounds": rounds,
        "python": platform.python_version(),
        "decisions_per_s": {k: round(v) for k, v in rows.items()},
        "decisions_made": made,
        "decisions_checked": True,
        "best_peer": best_peer,
        "tether_sliding_vs_best_peer": round(ours / rows[best_peer], 2),
        "tether_gcra_vs_best_peer": round(rows["tether gcra"] / rows[best_peer], 2),
        "target": 1.5,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(main(args.seconds, args.rounds, args.concurrency))
    print(json.dumps(result))
