"""The Redis Streams sink against the real server: de-duplication, trimming, refusals, outages."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.integration.sinks.tcp_proxy import TcpProxy
from tether.core.envelope import Event, make_event
from tether.core.errors import ConfigError, SinkUnavailableError
from tether.sinks.redis_streams import RedisStreamsSink, read_entry

pytestmark = pytest.mark.redis


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"test{uuid.uuid4().hex[:12]}"


@pytest.fixture(autouse=True)
async def _cleanup(admin: aioredis.Redis, prefix: str) -> AsyncIterator[None]:
    yield
    keys = [k async for k in admin.scan_iter(match=f"*{prefix}*", count=1000)]
    if keys:
        await admin.delete(*keys)


async def open_sink(redis_url: str, prefix: str, **kw: Any) -> RedisStreamsSink:
    return await RedisStreamsSink.connect(redis_url, stream=f"{prefix}:{{topic}}", **kw)


def orders(n: int, **kw: Any) -> list[Event]:
    return [
        make_event("OrderPlaced", {"n": i}, aggregate_type="order", aggregate_id=i, **kw)
        for i in range(n)
    ]


async def test_a_republished_event_adds_no_second_entry(
    redis_url: str, admin: aioredis.Redis, prefix: str
) -> None:
    sink = await open_sink(redis_url, prefix)
    try:
        batch = orders(10)
        assert all(o.ok for o in await sink.publish(batch))
        assert all(o.ok for o in await sink.publish(batch[3:7]))
        assert all(o.ok for o in await sink.publish(batch))
        entries = await admin.xrange(f"{prefix}:order")
        assert [read_entry(f)[0]["id"] for _, f in entries] == [str(e.id) for e in batch]
        assert sink.stats == {"added": 10, "duplicates": 14, "refused": 0}
        # The de-dup key sits in the stream's cluster slot and expires with the window.
        ttl = await admin.pttl(f"{{{prefix}:order}}:dedup:{batch[0].id}")
        assert 0 < ttl <= 120_000
    finally:
        await sink.close()


async def test_after_the_dedup_window_an_event_is_added_again(
    redis_url: str, admin: aioredis.Redis, prefix: str
) -> None:
    sink = await open_sink(redis_url, prefix, dedup_window=0.05)
    try:
        [event] = orders(1)
        await sink.publish([event])
        key = f"{{{prefix}:order}}:dedup:{event.id}"
        while await admin.exists(key):  # expiry is Redis's, not ours to fake
            await asyncio.sleep(0.01)
        await sink.publish([event])
        assert await admin.xlen(f"{prefix}:order") == 2
    finally:
        await sink.close()


async def test_the_entry_holds_the_envelope_and_the_payload_bytes(
    redis_url: str, admin: aioredis.Redis, prefix: str
) -> None:
    sink = await open_sink(redis_url, prefix)
    try:
        [event] = orders(1, tenant_id="acme", user_id="Zoë", correlation_id="c-1")
        await sink.publish([event])
        [(_, fields)] = await admin.xrange(f"{prefix}:order")
        attrs, data = read_entry(fields)
        assert attrs == event.cloudevent_attributes()
        assert data == event.data
    finally:
        await sink.close()


async def test_maxlen_trims_each_stream(redis_url: str, admin: aioredis.Redis, prefix: str) -> None:
    exact = await open_sink(redis_url, prefix, maxlen=5, exact_trim=True)
    rough = await RedisStreamsSink.connect(redis_url, stream=f"{prefix}:rough", maxlen=100)
    try:
        for _ in range(4):
            await exact.publish(orders(10))
            await rough.publish(orders(300))
        assert await admin.xlen(f"{prefix}:order") == 5
        # "~" trims whole nodes only: at least maxlen stay, and far fewer than were added.
        assert 100 <= await admin.xlen(f"{prefix}:rough") < 1200
    finally:
        await exact.close()
        await rough.close()


async def test_minid_age_drops_older_entries(
    redis_url: str, admin: aioredis.Redis, prefix: str
) -> None:
    sink = await open_sink(redis_url, prefix, minid_age=0.05, exact_trim=True)
    try:
        old = orders(3)
        await sink.publish(old)
        [(first_id, _)] = await admin.xrange(f"{prefix}:order", count=1)
        while True:  # until the server's clock is past the old entries' age
            server_s, server_us = await admin.time()
            if server_s * 1000 + server_us // 1000 > int(first_id.split(b"-")[0]) + 60:
                break
            await asyncio.sleep(0.01)
        new = orders(2)
        await sink.publish(new)
        ids = [read_entry(f)[0]["id"] for _, f in await admin.xrange(f"{prefix}:order")]
        assert ids == [str(e.id) for e in new]
    finally:
        await sink.close()


async def test_a_key_that_is_not_a_stream_fails_that_event_for_good(
    redis_url: str, admin: aioredis.Redis, prefix: str
) -> None:
    await admin.set(f"{prefix}:taken", "a string")
    sink = await open_sink(redis_url, prefix)
    try:
        outcomes = await sink.publish([*orders(1), make_event("X", {}, topic="taken")])
        assert [(o.ok, o.retryable) for o in outcomes] == [(True, True), (False, False)]
        assert "WRONGTYPE" in (outcomes[1].error or "")
    finally:
        await sink.close()


async def test_a_stream_key_the_event_cannot_fill_fails_that_event(
    redis_url: str, prefix: str
) -> None:
    sink = await RedisStreamsSink.connect(redis_url, stream=f"{prefix}:{{tenant}}")
    try:
        outcomes = await sink.publish([*orders(1), *orders(1, tenant_id="acme")])
        assert [(o.ok, o.retryable) for o in outcomes] == [(False, False), (True, True)]
    finally:
        await sink.close()


async def test_lost_connection_makes_the_sink_unavailable_then_it_recovers(
    redis_url: str, admin: aioredis.Redis, prefix: str
) -> None:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    sink = await RedisStreamsSink.connect(
        f"redis://127.0.0.1:{proxy.port}/0", stream=f"{prefix}:{{topic}}", timeout=1.0
    )
    try:
        batch = orders(4)
        await sink.publish(batch[:2])
        await proxy.cut()
        with pytest.raises(SinkUnavailableError, match="lost Redis"):
            await sink.publish(batch)
        await proxy.start()
        assert all(o.ok for o in await sink.publish(batch))
        assert await admin.xlen(f"{prefix}:order") == 4
    finally:
        await sink.close()
        await proxy.cut()


async def test_a_hung_server_makes_the_sink_unavailable(redis_url: str, prefix: str) -> None:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    sink = await RedisStreamsSink.connect(
        f"redis://127.0.0.1:{proxy.port}/0", stream=f"{prefix}:{{topic}}", timeout=0.5
    )
    try:
        proxy.swallow_replies = True
        with pytest.raises(SinkUnavailableError, match="did not answer 1 call"):
            await sink.publish(orders(2))
    finally:
        await sink.close()
        await proxy.cut()


async def test_connect_errors_name_the_problem() -> None:
    with pytest.raises(SinkUnavailableError, match="cannot reach Redis"):
        await RedisStreamsSink.connect("redis://127.0.0.1:1/0", timeout=0.5)
    with pytest.raises(ConfigError, match="Redis URL"):
        await RedisStreamsSink.connect("http://127.0.0.1:6379")
    with pytest.raises(ConfigError, match="maxlen or minid_age"):
        await RedisStreamsSink.connect(maxlen=10, minid_age=60)
    with pytest.raises(ConfigError, match="stream key template"):
        await RedisStreamsSink.connect(stream="{nope}")
