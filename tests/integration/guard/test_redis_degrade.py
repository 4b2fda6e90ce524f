"""When Redis does not answer, guards decide on local state, log once, and never fail for it."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tether.guard import BreakerPolicy, CircuitOpen, Guard
from tether.guard.redis_store import RedisBreakerStore

POLICY = BreakerPolicy(failure_threshold=2, window_s=10, open_s=30)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def broken() -> str:
    raise ConnectionError("dependency down")


async def fine() -> str:
    return "ok"


@pytest.fixture
async def silent_redis() -> AsyncIterator[int]:
    """A port that accepts connections and never answers (a hung Redis)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()


async def test_redis_down_degrades_to_local_state_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{closed_port()}/0", socket_connect_timeout=0.5)
    store = RedisBreakerStore(client, retry_s=60)
    guard = Guard("down", breaker=POLICY, store=store)
    with caplog.at_level(logging.WARNING, logger="tether.guard"):
        assert await guard.call(fine) == "ok"
        for _ in range(2):
            with pytest.raises(ConnectionError):
                await guard.call(broken)
        with pytest.raises(CircuitOpen):
            await guard.call(fine)
    assert store.degraded
    lines = [r.getMessage() for r in caplog.records if r.name == "tether.guard"]
    assert len(lines) == 1
    assert "did not answer" in lines[0]
    assert "deciding on local state" in lines[0]
    await client.aclose()


async def test_a_hung_redis_is_bounded_by_the_store_timeout(silent_redis: int) -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{silent_redis}/0")
    guard = Guard(
        "hung", breaker=POLICY, store=RedisBreakerStore(client, timeout_s=0.2, retry_s=60)
    )
    async with asyncio.timeout(3):
        assert await guard.call(fine) == "ok"
        assert await guard.call(fine) == "ok"  # Redis is not asked again within retry_s
    await client.aclose()


async def test_state_is_shared_again_once_redis_answers(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = aioredis.from_url(redis_url)
    bad = aioredis.from_url(f"redis://127.0.0.1:{closed_port()}/0")
    store = RedisBreakerStore(bad, prefix="tether:test-guard-back:", retry_s=0)
    with caplog.at_level(logging.WARNING, logger="tether.guard"):
        assert await Guard("back", breaker=POLICY, store=store).state() == "closed"
        assert store.degraded
        store._client = good  # Redis is back (same store object, a reachable server)
        store._script = good.register_script(store._script.script)
        assert await Guard("back", breaker=POLICY, store=store).state() == "closed"
    assert not store.degraded
    assert "answers again" in caplog.records[-1].getMessage()
    await good.aclose()
    await bad.aclose()
