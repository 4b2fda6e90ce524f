"""Reading circuits from outside (tether.guard.inspect): both stores show the record their
deciding steps wrote, change nothing by reading, and forget a circuit on reset."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from tether.guard import BreakerInspector, BreakerPolicy, MemoryBreakerStore, view_of
from tether.guard.redis_store import RedisBreakerStore

POLICY = BreakerPolicy(failure_threshold=3, window_s=10, open_s=30)
T0 = 1_764_000_000.25


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryBreakerStore()
        return
    client = aioredis.from_url(request.getfixturevalue("redis_url"))
    prefix = f"tether:test-inspect:{uuid.uuid4().hex}:"
    try:
        yield RedisBreakerStore(client, prefix=prefix, timeout_s=10)
    finally:
        for key in await client.keys(prefix + "*"):
            await client.delete(key)
        await client.aclose()


async def test_records_show_each_state_and_reading_changes_nothing(store: Any) -> None:
    assert isinstance(store, BreakerInspector)
    await store.failure("failing", POLICY, T0)
    await store.failure("failing", POLICY, T0 + 1)
    for _ in range(3):
        await store.failure("open", POLICY, T0)
    records = await store.records(["failing", "open", "never"])
    assert records["never"] is None
    failing = view_of(records["failing"], POLICY, T0 + 2)
    assert (failing.state, failing.failures, failing.stored) == ("closed", 2, True)
    assert view_of(records["failing"], POLICY, T0 + 11).failures == 0  # the window passed
    opened = view_of(records["open"], POLICY, T0 + 5)
    assert (opened.state, opened.open_until) == ("open", T0 + 30)
    assert view_of(records["open"], POLICY, T0 + 31).state == "half_open"
    # Reading at a time past the open period wrote nothing: the record is still "open".
    assert await store.state("open", POLICY, T0 + 31) == "half_open"
    again = await store.records(["open"])
    assert again["open"] is not None and again["open"].state == "open"
    assert again["open"].open_until == T0 + 30
    assert view_of(None, POLICY, T0) == view_of(None, POLICY, T0 + 99)


async def test_reset_closes_an_open_circuit_for_every_guard_of_the_store(store: Any) -> None:
    for _ in range(3):
        await store.failure("c", POLICY, T0)
    assert not (await store.admit("c", POLICY, T0 + 1)).allowed
    assert await store.reset("c") is True
    assert (await store.records(["c"]))["c"] is None
    assert (await store.admit("c", POLICY, T0 + 2)).allowed
    assert await store.reset("never") is False


async def test_a_redis_store_that_cannot_be_read_raises_instead_of_guessing() -> None:
    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    store = RedisBreakerStore(client, timeout_s=1)
    try:
        with pytest.raises((OSError, TimeoutError, aioredis.ConnectionError)):
            await store.records(["x"])
        with pytest.raises((OSError, TimeoutError, aioredis.ConnectionError)):
            await store.reset("x")
    finally:
        await client.aclose()
