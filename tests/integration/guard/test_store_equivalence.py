"""The Lua rules decide exactly as the Python rules: random step sequences, same answers."""

from __future__ import annotations

import random
import uuid

import pytest
import redis.asyncio as aioredis

from tether.guard import BreakerPolicy, MemoryBreakerStore
from tether.guard.redis_store import RedisBreakerStore

POLICIES = [
    BreakerPolicy(failure_threshold=1, window_s=5, open_s=3, half_open_max_calls=1),
    BreakerPolicy(failure_threshold=3, window_s=10, open_s=7.5, half_open_max_calls=2),
    BreakerPolicy(failure_threshold=5, window_s=2.5, open_s=20, half_open_max_calls=3),
]


@pytest.mark.parametrize("seed", range(3))
async def test_random_sequences_agree(redis_url: str, seed: int) -> None:
    rng = random.Random(seed)
    policy = POLICIES[seed]
    client = aioredis.from_url(redis_url)
    prefix = f"tether:test-guard-eq:{uuid.uuid4().hex}:"
    memory, shared = MemoryBreakerStore(), RedisBreakerStore(client, prefix=prefix, timeout_s=10)
    now = 1_764_000_000.0
    try:
        for step in range(400):
            now += rng.choice([0, 0, 0.1, 0.5, 1, 2, 4, 9])
            name = rng.choice(["a", "b"])
            op = rng.choice(["admit", "admit", "success", "failure", "failure", "state"])
            if op == "admit":
                ours = await memory.admit(name, policy, now)
                theirs = await shared.admit(name, policy, now)
                assert (ours.allowed, ours.state) == (theirs.allowed, theirs.state), step
                assert ours.retry_after == pytest.approx(theirs.retry_after, abs=1e-6), step
            else:
                method = getattr(memory, op)
                assert await method(name, policy, now) == await getattr(shared, op)(
                    name, policy, now
                ), (step, op)
        assert not shared.degraded
    finally:
        for key in await client.keys(prefix + "*"):
            await client.delete(key)
        await client.aclose()
