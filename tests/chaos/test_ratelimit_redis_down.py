"""Redis stops in the middle of traffic: each limiter keeps its failure policy, never a 500.

Most "Redis unreachable" cases are covered without stopping anything (a client pointed at a
closed port, tests/unit/http/test_ratelimit_middleware.py); this is the one real stop/restart.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.support import chaos
from tether.http.ratelimit import FailureMode, Limit, RateLimiter, RateLimitMiddleware, Rule, by_ip
from tether.http.ratelimit.stores.redis import RedisRateLimitStore

pytestmark = [pytest.mark.chaos, pytest.mark.redis, pytest.mark.timeout(90)]

LIMIT = Limit("chaos", 1_000_000, 3600)


async def _ok(request: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


def client_for(redis: Redis, mode: FailureMode) -> httpx.AsyncClient:
    limiter = RateLimiter(
        RedisRateLimitStore(redis, prefix=f"test:chaos:{uuid.uuid4().hex}:"),
        on_store_error=mode,
        timeout=0.2,
        cooldown=0.05,
    )
    app = RateLimitMiddleware(Starlette(routes=[Route("/", _ok)]), limiter, [Rule(by_ip(), LIMIT)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_redis_stopping_mid_traffic_keeps_each_policy(redis_url: str) -> None:
    redis = Redis.from_url(redis_url, socket_connect_timeout=0.2, socket_timeout=0.2)
    seen: dict[FailureMode, dict[str, Counter[int]]] = {
        mode: {"up": Counter(), "down": Counter(), "back": Counter()} for mode in FailureMode
    }
    clients = {mode: client_for(redis, mode) for mode in FailureMode}

    async def burst(phase: str, n: int) -> None:
        for mode, c in clients.items():
            for _ in range(n):
                seen[mode][phase][(await c.get("/")).status_code] += 1

    try:
        await burst("up", 20)
        await asyncio.to_thread(chaos.stop, "redis")
        await burst("down", 20)
    finally:
        await asyncio.to_thread(chaos.start, "redis")
    try:
        # After the cooldown the limiters ask Redis again and see it back.
        async with asyncio.timeout(15):
            for c in clients.values():
                while "ratelimit" not in (await c.get("/")).headers:
                    await asyncio.sleep(0.05)
        await burst("back", 5)
    finally:
        for c in clients.values():
            await c.aclose()
        await redis.aclose()

    for mode in FailureMode:
        assert seen[mode]["up"] == Counter({200: 20})
        assert seen[mode]["back"] == Counter({200: 5})
    assert seen[FailureMode.OPEN]["down"] == Counter({200: 20})
    assert seen[FailureMode.CLOSED]["down"] == Counter({503: 20})
