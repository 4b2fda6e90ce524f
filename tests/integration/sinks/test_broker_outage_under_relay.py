"""A relay draining PostgreSQL into RabbitMQ or Redis Streams loses its broker mid-drain.

The connection is cut by a proxy (the broker keeps running for everyone else) while batches are
in flight, and restored. Each event allows a single attempt, so an outage that charged one
would dead-letter it: in the end every event is in the broker, none is dead, the outbox is
empty, and Redis holds each event id exactly once (RabbitMQ may hold a re-published one twice;
consumers de-duplicate by ``message_id``). The chaos tier does the same with a real RabbitMQ
restart (``tests/chaos/test_rabbitmq_restart.py``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aio_pika
import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.sinks.tcp_proxy import TcpProxy
from tether.outbox import add_event
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.base import Sink
from tether.sinks.rabbitmq import RabbitMQSink
from tether.sinks.redis_streams import RedisStreamsSink, read_entry

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

EVENTS = 3000


@dataclass
class Target:
    sink: Sink
    proxy: TcpProxy
    delivered: Callable[[], Awaitable[list[str]]]
    """Every event id the broker holds, one per message or entry."""


async def load(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    ids: set[str] = set()
    try:
        for start in range(0, EVENTS, 500):
            async with conn.transaction():
                for i in range(start, start + 500):
                    ref = await add_event(
                        conn, "OrderPlaced", {"n": i}, topic="order", max_attempts=1
                    )
                    ids.add(str(ref.id))
    finally:
        await conn.close()
    return ids


@pytest.fixture
async def rabbitmq(amqp_url: str) -> AsyncIterator[Target]:
    exchange = f"outage.{uuid.uuid4().hex[:12]}"
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    sink = await RabbitMQSink.connect(
        f"amqp://guest:guest@127.0.0.1:{proxy.port}/", exchange=exchange, confirm_timeout=10.0
    )
    admin = await aio_pika.connect(amqp_url)
    channel = await admin.channel()
    queue = await channel.declare_queue("", exclusive=True)
    await queue.bind(exchange, "#")
    seen: list[str] = []

    async def delivered() -> list[str]:
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            seen.append(str(message.message_id))
        return seen

    try:
        yield Target(sink, proxy, delivered)
    finally:
        await sink.close()
        await proxy.cut()
        await channel.exchange_delete(exchange)
        await admin.close()


@pytest.fixture
async def redis_streams(redis_url: str) -> AsyncIterator[Target]:
    prefix = f"outage{uuid.uuid4().hex[:12]}"
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    sink = await RedisStreamsSink.connect(
        f"redis://127.0.0.1:{proxy.port}/0", stream=f"{prefix}:{{topic}}", timeout=10.0
    )
    admin = aioredis.Redis.from_url(redis_url)

    async def delivered() -> list[str]:
        entries = await admin.xrange(f"{prefix}:order")
        return [read_entry(fields)[0]["id"] for _, fields in entries]

    try:
        yield Target(sink, proxy, delivered)
    finally:
        await sink.close()
        await proxy.cut()
        keys = [k async for k in admin.scan_iter(match=f"*{prefix}*", count=1000)]
        if keys:
            await admin.delete(*keys)
        await admin.aclose()


async def wait_for(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float, relay: Relay
) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {timeout}s; relay {relay.stats}") from None


async def drain_through_an_outage(dsn: str, target: Target) -> tuple[set[str], list[str]]:
    expected = await load(dsn)
    store = await PostgresOutboxStore.connect(dsn, connections=2)
    relay = Relay(store, [target.sink], config=RelayConfig(batch_size=200, concurrency=2))
    stop = asyncio.Event()
    runner = asyncio.create_task(relay.run(stop))
    conn = await asyncpg.connect(dsn)

    async def outbox_rows() -> int:
        return int(await conn.fetchval("SELECT count(*) FROM tether_outbox"))

    async def delivered_some() -> bool:
        return relay.stats.published >= 400

    async def deferred_some() -> bool:
        return relay.stats.deferred > 0

    async def drained() -> bool:
        return await outbox_rows() == 0

    try:
        await wait_for(delivered_some, "first deliveries", 30, relay)
        await target.proxy.cut()  # batches in flight lose their connection
        await wait_for(deferred_some, "the relay to defer for the outage", 30, relay)
        await target.proxy.start()
        await wait_for(drained, "the outbox to drain after the outage", 60, relay)
    except AssertionError as failure:
        why = await conn.fetch(
            "SELECT state, last_error, count(*) AS n FROM tether_outbox GROUP BY 1, 2 LIMIT 10"
        )
        raise AssertionError(f"{failure}; rows left: {[tuple(r) for r in why]}") from None
    finally:
        stop.set()
        await asyncio.wait_for(runner, 30)
        await store.close()
        await conn.close()
    assert relay.stats.dead == 0, relay.stats
    assert relay.stats.retried == 0, relay.stats
    return expected, await target.delivered()


@pytest.mark.rabbitmq
async def test_rabbitmq_outage_mid_drain_loses_nothing(pg_dsn: str, rabbitmq: Target) -> None:
    expected, delivered = await drain_through_an_outage(pg_dsn, rabbitmq)
    assert set(delivered) == expected


@pytest.mark.redis
async def test_redis_outage_mid_drain_loses_nothing_and_adds_nothing_twice(
    pg_dsn: str, redis_streams: Target
) -> None:
    expected, delivered = await drain_through_an_outage(pg_dsn, redis_streams)
    assert sorted(delivered) == sorted(expected)
