"""Rate-limit decisions per second on one Redis: Tether vs ``limits`` vs ``throttled-py``.

    .venv/bin/python benchmarks/ratelimit_decisions.py [--seconds 2] [--rounds 3] [--concurrency 64]

Every contender makes the same decisions in the same process and event loop (uvloop): the
``api_key`` preset (10,000 per hour) over 1,000 keys, ``concurrency`` tasks deciding back to
back for ``--seconds``, contenders interleaved for ``--rounds`` rounds, median reported. All use
redis-py's asyncio client against 127.0.0.1:6379 (``limits`` with ``implementation="redispy"``).
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

from tether.http.ratelimit import API_KEY, Algorithm
from tether.http.ratelimit.stores.redis import RedisRateLimitStore

REDIS_URL = os.environ.get("TETHER_BENCH_REDIS", "redis://127.0.0.1:6379/0")
KEYS = [f"client-{i}" for i in range(1000)]
Decide = Callable[[str], Awaitable[bool]]


async def measure(decide: Decide, seconds: float, concurrency: int) -> float:
    for key in KEYS[:100]:  # warm-up: connections, script loading
        await decide(key)
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        while time.perf_counter() < deadline:
            await decide(rng.choice(KEYS))
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / (time.perf_counter() - start)


def tether(redis: Redis, prefix: str, algorithm: Algorithm, batch: bool) -> Decide:
    store = RedisRateLimitStore(redis, prefix=prefix, batch=batch)

    async def decide(key: str) -> bool:
        return (await store.hit(key, API_KEY, algorithm)).allowed

    return decide


def limits_contender(prefix: str, moving: bool) -> Decide:
    storage = RedisStorage(
        "async+" + REDIS_URL, implementation="redispy", key_prefix=prefix, max_connections=64
    )
    strategy = (
        MovingWindowRateLimiter(storage) if moving else SlidingWindowCounterRateLimiter(storage)
    )
    item = RateLimitItemPerHour(API_KEY.limit)

    async def decide(key: str) -> bool:
        return await strategy.hit(item, key)

    return decide


def throttled_contender(prefix: str, using: str) -> Decide:
    store = RedisStore(
        server=REDIS_URL, options={"CONNECTION_POOL_KWARGS": {"max_connections": 64}}
    )
    limiter = Throttled(using=using, quota=per_hour(API_KEY.limit), store=store, key_prefix=prefix)

    async def decide(key: str) -> bool:
        return not (await limiter.limit(key)).limited

    return decide


async def main(seconds: float, rounds: int, concurrency: int) -> dict[str, Any]:
    # The same plain pool as the peers get (64 connections for 64 tasks: nobody ever waits).
    redis = Redis.from_url(REDIS_URL, max_connections=64)
    run = uuid.uuid4().hex[:8]
    contenders: dict[str, Decide] = {
        "tether sliding_window": tether(redis, f"bench:{run}:ts:", Algorithm.SLIDING_WINDOW, True),
        "tether gcra": tether(redis, f"bench:{run}:tg:", Algorithm.GCRA, True),
        "tether sliding_window, unbatched": tether(
            redis, f"bench:{run}:tu:", Algorithm.SLIDING_WINDOW, False
        ),
        "limits moving_window": limits_contender(f"bench{run}lm", moving=True),
        "limits sliding_window_counter": limits_contender(f"bench{run}ls", moving=False),
        "throttled-py sliding_window": throttled_contender(f"bench{run}ps", "sliding_window"),
        "throttled-py gcra": throttled_contender(f"bench{run}pg", "gcra"),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        for _ in range(rounds):
            for name, decide in contenders.items():
                samples[name].append(await measure(decide, seconds, concurrency))
    finally:
        for pattern in (f"bench:{run}:*", f"*bench{run}*"):
            async for key in redis.scan_iter(match=pattern, count=1000):
                await redis.delete(key)
        await redis.aclose()
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
