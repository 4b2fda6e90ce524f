"""500 concurrent identical POSTs with one key, on the Redis store: one execution."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from tests.unit.http.idem_app import Calls, build
from tether.http.idempotency.stores.redis import RedisIdempotencyStore

pytestmark = pytest.mark.redis


async def test_500_concurrent_duplicates_execute_once_on_redis(redis_url: str) -> None:
    calls = Calls(delay=0.05)
    # A blocking pool queues callers past 64 connections instead of failing them.
    client = Redis.from_pool(BlockingConnectionPool.from_url(redis_url, max_connections=64))
    store = RedisIdempotencyStore(client, prefix=f"test:idem:{uuid.uuid4().hex}:")
    transport = httpx.ASGITransport(app=build(store, calls))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            responses = await asyncio.gather(
                *(
                    c.post("/items", content=b"pay", headers={"Idempotency-Key": "once"})
                    for _ in range(500)
                )
            )
    finally:
        await client.aclose()
    statuses = [r.status_code for r in responses]
    assert calls.count == 1
    assert set(statuses) <= {201, 409} and statuses.count(201) >= 1
