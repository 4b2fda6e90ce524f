"""Round-trip sharing in the Redis rate-limit store: still one atomic script per decision."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tether.http.ratelimit import Algorithm, Limit
from tether.http.ratelimit.stores.redis import RedisRateLimitStore

pytestmark = pytest.mark.redis


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def store(redis: Redis) -> RedisRateLimitStore:
    return RedisRateLimitStore(redis, prefix=f"test:rlp:{uuid.uuid4().hex}:")


async def test_batched_and_unbatched_decide_alike(redis: Redis) -> None:
    limit = Limit("same", 30, 3600)
    prefix = f"test:rlp:{uuid.uuid4().hex}:"
    batched = RedisRateLimitStore(redis, prefix=prefix + "b:")
    single = RedisRateLimitStore(redis, prefix=prefix + "s:", batch=False)
    for algorithm in Algorithm:
        a = await asyncio.gather(*(batched.hit(str(i % 3), limit, algorithm) for i in range(120)))
        b = [await single.hit(str(i % 3), limit, algorithm) for i in range(120)]
        assert sum(d.allowed for d in a) == sum(d.allowed for d in b) == 90


async def test_scripts_reload_after_the_cache_is_flushed(redis: Redis) -> None:
    s = store(redis)
    limit = Limit("reload", 5, 3600)
    assert (await s.hit("k", limit, Algorithm.GCRA)).allowed
    await redis.script_flush()  # as after a Redis restart
    decisions = await asyncio.gather(*(s.hit("k", limit, Algorithm.GCRA) for _ in range(6)))
    assert sum(d.allowed for d in decisions) == 4


async def test_a_caller_that_gives_up_does_not_disturb_the_batch(redis: Redis) -> None:
    s = store(redis)
    limit = Limit("cancel", 100, 3600)
    impatient = asyncio.create_task(s.hit("k", limit, Algorithm.SLIDING_WINDOW))
    others = [asyncio.create_task(s.hit("k", limit, Algorithm.SLIDING_WINDOW)) for _ in range(5)]
    impatient.cancel()
    results = await asyncio.gather(*others)
    assert all(d.allowed for d in results)
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_joiners_are_answered_when_the_leader_is_cancelled(redis: Redis) -> None:
    from tether.core.errors import StoreError

    s = store(redis)
    limit = Limit("leader", 100, 3600)
    leader = asyncio.create_task(s.hit("k", limit, Algorithm.GCRA))
    joiner = asyncio.create_task(s.hit("k", limit, Algorithm.GCRA))
    await asyncio.sleep(0)  # the leader opened its batch and yielded; the joiner joined it
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    async with asyncio.timeout(5):
        with pytest.raises(StoreError):
            await joiner
