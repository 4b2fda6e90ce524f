"""Redis stops in the middle of traffic: each limiter keeps its failure policy, never a 500.

Most "Redis unreachable" cases are covered without stopping anything (a client pointed at a
closed port, tests/unit/http/test_ratelimit_middleware.py); this is the one real stop/restart.
The store is watched, so the test shows that Redis made every decision while up, that calls
to it failed while down (the failure path ran, not a shortcut), and that it decides again after.
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
from tether.http.ratelimit.algorithms import Algorithm, Decision
from tether.http.ratelimit.stores.redis import RedisRateLimitStore

pytestmark = [pytest.mark.chaos, pytest.mark.redis, pytest.mark.timeout(90)]

LIMIT = Limit("chaos", 1_000_000, 3600)


async def _ok(request: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


class WatchedStore(RedisRateLimitStore):
    """The Redis store, counting the decisions Redis made and the calls that failed."""

    def __init__(self, client: Redis, prefix: str) -> None:
        super().__init__(client, prefix)
        self.prefix = prefix
        self.answered = 0
        self.failed = 0

    async def hit(self, key: str, limit: Limit, algorithm: Algorithm, cost: int = 1) -> Decision:
        try:
            decision = await super().hit(key, limit, algorithm, cost)
        except BaseException:  # a store error, or the limiter's timeout cancelling the call
            self.failed += 1
            raise
        self.answered += 1
        return decision


def client_for(store: WatchedStore, mode: FailureMode) -> httpx.AsyncClient:
    limiter = RateLimiter(store, on_store_error=mode, timeout=0.2, cooldown=0.05)
    app = RateLimitMiddleware(Starlette(routes=[Route("/", _ok)]), limiter, [Rule(by_ip(), LIMIT)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_redis_stopping_mid_traffic_keeps_each_policy(redis_url: str) -> None:
    redis = Redis.from_url(redis_url, socket_connect_timeout=0.2, socket_timeout=0.2)
    seen: dict[FailureMode, dict[str, Counter[int]]] = {
        mode: {"up": Counter(), "down": Counter(), "back": Counter()} for mode in FailureMode
    }
    # Responses that carried a rate-limit decision (the header), per mode and phase.
    decided: dict[FailureMode, Counter[str]] = {mode: Counter() for mode in FailureMode}
    stores = {
        mode: WatchedStore(redis, prefix=f"test:chaos:{uuid.uuid4().hex}:") for mode in FailureMode
    }
    clients = {mode: client_for(stores[mode], mode) for mode in FailureMode}

    async def burst(phase: str, n: int) -> None:
        for mode, c in clients.items():
            for _ in range(n):
                response = await c.get("/")
                seen[mode][phase][response.status_code] += 1
                decided[mode][phase] += "ratelimit" in response.headers

    try:
        await burst("up", 20)
        # Redis really counted: every request was its decision, and its keys are there.
        for mode, store in stores.items():
            assert (store.answered, store.failed) == (20, 0), mode
            assert await redis.keys(f"{store.prefix}*"), mode
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
        assert decided[mode]["up"] == 20
        # The failure path ran: Redis was asked and failed, and no response claimed a decision.
        assert stores[mode].failed >= 1, mode
        assert decided[mode]["down"] == 0, mode
        assert decided[mode]["back"] == 5
    assert seen[FailureMode.OPEN]["down"] == Counter({200: 20})
    assert seen[FailureMode.CLOSED]["down"] == Counter({503: 20})
