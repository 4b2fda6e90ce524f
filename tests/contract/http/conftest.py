"""One idempotency store per backend, so the contract suite runs against every one of them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tether.http.idempotency import IdempotencyStore, MemoryIdempotencyStore
from tether.http.idempotency.stores.postgres import PostgresIdempotencyStore
from tether.http.idempotency.stores.redis import RedisIdempotencyStore


def async_url(dsn: str) -> str:
    return "postgresql+asyncpg://" + dsn.split("://", 1)[1]


@pytest.fixture
async def pg_engine(pg_dsn: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(async_url(pg_dsn), pool_size=20, max_overflow=20)
    yield engine
    await engine.dispose()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    # A blocking pool makes callers past 50 connections queue instead of failing.
    client = Redis.from_pool(BlockingConnectionPool.from_url(redis_url, max_connections=50))
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "redis", "redis-unbatched", "postgres"])
def store(request: pytest.FixtureRequest) -> IdempotencyStore:
    kind = request.param
    if kind == "memory":
        return MemoryIdempotencyStore()
    if kind.startswith("redis"):
        client = request.getfixturevalue("redis_client")
        prefix = f"test:idem:{uuid.uuid4().hex}:"
        return RedisIdempotencyStore(client, prefix=prefix, batch=kind == "redis")
    return PostgresIdempotencyStore(request.getfixturevalue("pg_engine"))
