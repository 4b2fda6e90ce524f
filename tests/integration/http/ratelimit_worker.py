"""One app process of the multi-process rate-limit test: N requests through the middleware."""

from __future__ import annotations

import asyncio
from collections import Counter
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import httpx
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tether.http.ratelimit import Algorithm, Limit, RateLimiter, RateLimitMiddleware, Rule, by_ip
from tether.http.ratelimit.stores.redis import RedisRateLimitStore


async def _ok(request: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def _drive(
    redis_url: str, prefix: str, requests: int, limit: Limit, algorithm: str
) -> Counter[int]:
    client = Redis.from_pool(BlockingConnectionPool.from_url(redis_url, max_connections=20))
    limiter = RateLimiter(RedisRateLimitStore(client, prefix=prefix), timeout=5)
    app = RateLimitMiddleware(
        Starlette(routes=[Route("/", _ok)]), limiter, [Rule(by_ip(), limit, Algorithm(algorithm))]
    )
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 1))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            responses = await asyncio.gather(*(c.get("/") for _ in range(requests)))
    finally:
        await client.aclose()
    return Counter(r.status_code for r in responses)


def run(
    barrier: Barrier,
    results: Queue[dict[int, int]],
    redis_url: str,
    prefix: str,
    requests: int,
    limit: Limit,
    algorithm: str,
) -> None:
    barrier.wait(timeout=60)  # every process starts hammering at the same moment
    results.put(dict(asyncio.run(_drive(redis_url, prefix, requests, limit, algorithm))))
