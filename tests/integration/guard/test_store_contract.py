"""One contract for every breaker store: the in-process one and Redis (shared by instances).

Times are passed explicitly, so the suite controls the clock; the Redis store's rules run in
Lua and must decide exactly as the Python rules do.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from tether.guard import BreakerPolicy, BreakerStore, Guard, MemoryBreakerStore
from tether.guard.redis_store import RedisBreakerStore

POLICY = BreakerPolicy(failure_threshold=3, window_s=10, open_s=30, half_open_max_calls=2)
T0 = 1_764_000_000.25

# Each factory call gives another "instance": a second store over the same shared state.
StoreFactory = Callable[[], BreakerStore]


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    if request.param == "memory":
        shared = MemoryBreakerStore()
        yield lambda: shared
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"tether:test-guard:{uuid.uuid4().hex}:"
    clients: list[aioredis.Redis] = []

    def make() -> BreakerStore:
        client = aioredis.from_url(url)
        clients.append(client)
        store = RedisBreakerStore(client, prefix=prefix, timeout_s=10)
        made.append(store)
        return store

    made: list[RedisBreakerStore] = []
    yield make
    # A store that gave up on Redis decided locally: the test proved nothing about Redis.
    assert not any(store.degraded for store in made)
    for key in await clients[0].keys(prefix + "*"):
        await clients[0].delete(key)
    for client in clients:
        await client.aclose()


async def test_threshold_failures_within_the_window_open_the_circuit(stores: StoreFactory) -> None:
    store = stores()
    assert (await store.admit("a", POLICY, T0)).allowed
    assert await store.failure("a", POLICY, T0) == "closed"
    assert await store.failure("a", POLICY, T0 + 1) == "closed"
    assert await store.failure("a", POLICY, T0 + 2) == "open"
    refused = await store.admit("a", POLICY, T0 + 12)
    assert (refused.allowed, refused.state) == (False, "open")
    assert refused.retry_after == pytest.approx(20)
    assert await store.state("b", POLICY, T0) == "closed"  # circuits are per name


async def test_failures_spread_over_windows_do_not_open(stores: StoreFactory) -> None:
    store = stores()
    for t in (0, 5, 10, 15, 20, 25):
        await store.failure("a", POLICY, T0 + t)
    assert await store.state("a", POLICY, T0 + 26) == "closed"


async def test_half_open_probes_then_success_closes(stores: StoreFactory) -> None:
    store = stores()
    for _ in range(3):
        await store.failure("a", POLICY, T0)
    assert await store.state("a", POLICY, T0 + 29.9) == "open"
    assert await store.state("a", POLICY, T0 + 30) == "half_open"
    first = await store.admit("a", POLICY, T0 + 30)
    second = await store.admit("a", POLICY, T0 + 31)
    third = await store.admit("a", POLICY, T0 + 32)
    assert [first.allowed, second.allowed, third.allowed] == [True, True, False]
    assert third.state == "half_open"
    assert third.retry_after == pytest.approx(28)
    assert await store.success("a", POLICY, T0 + 33) == "closed"
    assert (await store.admit("a", POLICY, T0 + 33)).allowed


async def test_half_open_failure_opens_again(stores: StoreFactory) -> None:
    store = stores()
    for _ in range(3):
        await store.failure("a", POLICY, T0)
    assert (await store.admit("a", POLICY, T0 + 30)).allowed
    assert await store.failure("a", POLICY, T0 + 31) == "open"
    refused = await store.admit("a", POLICY, T0 + 40)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(21)


async def test_a_probe_that_never_reports_frees_its_slot(stores: StoreFactory) -> None:
    store = stores()
    one = BreakerPolicy(failure_threshold=1, window_s=10, open_s=30, half_open_max_calls=1)
    await store.failure("a", one, T0)
    assert (await store.admit("a", one, T0 + 30)).allowed
    assert not (await store.admit("a", one, T0 + 59)).allowed
    assert (await store.admit("a", one, T0 + 60)).allowed


async def test_instances_share_the_open_state(stores: StoreFactory) -> None:
    clock = [T0]
    one = Guard("shared", breaker=POLICY, store=stores(), clock=lambda: clock[0])
    two = Guard("shared", breaker=POLICY, store=stores(), clock=lambda: clock[0])

    async def broken() -> str:
        raise ConnectionError("down")

    for _ in range(3):
        with pytest.raises(ConnectionError):
            await one.call(broken)
    assert await two.state() == "open"

    async def fine() -> str:
        return "real"

    with pytest.raises(Exception, match="circuit open"):
        await two.call(fine)
    clock[0] += 30
    assert await two.call(fine) == "real"  # the half-open probe, on the other instance
    assert await one.state() == "closed"


async def test_concurrent_steps_are_atomic(stores: StoreFactory) -> None:
    many = [stores() for _ in range(4)]
    policy = BreakerPolicy(failure_threshold=40, window_s=10, open_s=30, half_open_max_calls=3)
    await asyncio.gather(*(many[i % 4].failure("a", policy, T0) for i in range(39)))
    assert await many[0].state("a", policy, T0) == "closed"
    await many[1].failure("a", policy, T0)
    assert await many[2].state("a", policy, T0) == "open"
    admitted = await asyncio.gather(*(many[i % 4].admit("a", policy, T0 + 30) for i in range(20)))
    assert sum(a.allowed for a in admitted) == 3
