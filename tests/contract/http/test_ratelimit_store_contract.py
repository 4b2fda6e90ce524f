"""The contract every rate-limit store passes: memory and Redis alike."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tether.http.ratelimit import Algorithm, Limit, MemoryRateLimitStore
from tether.http.ratelimit.stores import RateLimitStore
from tether.http.ratelimit.stores.redis import RedisRateLimitStore


@pytest.fixture(params=["memory", "redis"])
def rl_store(request: pytest.FixtureRequest) -> RateLimitStore:
    if request.param == "memory":
        return MemoryRateLimitStore()
    client = request.getfixturevalue("redis_client")
    return RedisRateLimitStore(client, prefix=f"test:rl:{uuid.uuid4().hex}:")


HOURLY = Limit("contract", 20, 3600)  # long window: the test never straddles a boundary


@pytest.mark.parametrize("algorithm", list(Algorithm))
async def test_admits_exactly_the_limit_then_refuses(
    rl_store: RateLimitStore, algorithm: Algorithm
) -> None:
    decisions = [await rl_store.hit("k", HOURLY, algorithm) for _ in range(25)]
    assert [d.allowed for d in decisions] == [True] * 20 + [False] * 5
    assert [d.remaining for d in decisions[:20]] == list(range(19, -1, -1))
    assert all(d.retry_after > 0 for d in decisions[20:])
    assert all(d.retry_after == 0 and d.reset_after > 0 for d in decisions[:20])


@pytest.mark.parametrize("algorithm", list(Algorithm))
async def test_keys_are_independent(rl_store: RateLimitStore, algorithm: Algorithm) -> None:
    one = Limit("one", 1, 3600)
    assert (await rl_store.hit("a", one, algorithm)).allowed
    assert (await rl_store.hit("b", one, algorithm)).allowed
    assert not (await rl_store.hit("a", one, algorithm)).allowed


@pytest.mark.parametrize("algorithm", list(Algorithm))
async def test_cost_counts_several_units(rl_store: RateLimitStore, algorithm: Algorithm) -> None:
    assert (await rl_store.hit("k", HOURLY, algorithm, cost=15)).allowed
    assert not (await rl_store.hit("k", HOURLY, algorithm, cost=6)).allowed
    assert (await rl_store.hit("k", HOURLY, algorithm, cost=5)).allowed


@pytest.mark.parametrize("algorithm", list(Algorithm))
async def test_concurrent_hits_admit_exactly_the_limit(
    rl_store: RateLimitStore, algorithm: Algorithm
) -> None:
    decisions = await asyncio.gather(*(rl_store.hit("k", HOURLY, algorithm) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 20


@pytest.mark.parametrize("algorithm", list(Algorithm))
async def test_quota_returns_after_retry_after(
    rl_store: RateLimitStore, algorithm: Algorithm
) -> None:
    fast = Limit("fast", 2, 0.2)
    for _ in range(2):
        await rl_store.hit("k", fast, algorithm)
    refused = await rl_store.hit("k", fast, algorithm)
    assert not refused.allowed and 0 < refused.retry_after <= 0.4 + 1e-6
    async with asyncio.timeout(5):
        while not (await rl_store.hit("k", fast, algorithm)).allowed:
            await asyncio.sleep(0.02)
