"""When Redis does not answer, guards decide on local state, log once, and never fail for it."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.integration.sinks.tcp_proxy import TcpProxy
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


async def test_redis_cut_then_back_shares_state_again(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One instance reaches Redis through a proxy the test cuts; the other directly."""
    prefix = f"tether:test-guard:{uuid.uuid4().hex}:"
    host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    direct = aioredis.from_url(redis_url)
    proxied = aioredis.from_url(f"redis://127.0.0.1:{proxy.port}/0", socket_timeout=0.5)
    cut_off = RedisBreakerStore(proxied, prefix=prefix, retry_s=0)
    one = Guard("shared", breaker=POLICY, store=cut_off)
    two = Guard("shared", breaker=POLICY, store=RedisBreakerStore(direct, prefix=prefix))
    try:
        assert await one.call(fine) == "ok"
        await proxy.cut()
        with caplog.at_level(logging.WARNING, logger="tether.guard"):
            assert await one.call(fine) == "ok"  # decided locally, no error
            assert cut_off.degraded
            for _ in range(2):
                with pytest.raises(ConnectionError):
                    await two.call(broken)  # the other instance opens the shared circuit
            await proxy.start()
            with pytest.raises(CircuitOpen):
                await one.call(fine)  # back on Redis: it sees the open circuit
        assert not cut_off.degraded
        messages = [r.getMessage() for r in caplog.records if r.name == "tether.guard"]
        assert len(messages) == 2
        assert "did not answer" in messages[0]
        assert "answers again" in messages[1]
    finally:
        await proxy.cut()
        for key in await direct.keys(prefix + "*"):
            await direct.delete(key)
        await direct.aclose()
        await proxied.aclose()
