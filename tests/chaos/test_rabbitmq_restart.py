"""RabbitMQ stopped and started again under a relay draining PostgreSQL: every event delivered.

The relay keeps running with the same sink; while the broker is down its batches are deferred
(no attempt spent), the robust connection comes back by itself, and afterwards a durable queue
bound to the exchange holds every event id (a batch cut by the stop may be there twice:
consumers de-duplicate by ``message_id``). Nothing is left pending or dead in the outbox.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
import asyncpg
import pytest

from tests.support import chaos
from tether.outbox import add_event
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.rabbitmq import RabbitMQSink

pytestmark = [pytest.mark.chaos, pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.timeout(240)]

EVENTS = 20_000


async def load(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    ids: set[str] = set()
    try:
        for start in range(0, EVENTS, 1000):
            async with conn.transaction():
                for i in range(start, start + 1000):
                    ref = await add_event(
                        conn, "OrderPlaced", {"n": i, "pad": "x" * 200}, topic="order"
                    )
                    ids.add(str(ref.id))
    finally:
        await conn.close()
    return ids


async def connect_when_up(url: str) -> aio_pika.abc.AbstractConnection:
    deadline = time.monotonic() + 60
    while True:
        try:
            return await aio_pika.connect(url, timeout=2)
        except Exception:  # still booting: any connection error means try again
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def read_ids(url: str, queue_name: str, exchange: str) -> list[str]:
    conn = await connect_when_up(url)
    try:
        channel = await conn.channel()
        queue = await channel.declare_queue(queue_name, durable=True)
        ids = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            ids.append(str(message.message_id))
        await queue.delete(if_unused=False, if_empty=False)
        await channel.exchange_delete(exchange)
        return ids
    finally:
        await conn.close()


async def test_rabbitmq_restart_under_the_relay_loses_nothing(pg_dsn: str, amqp_url: str) -> None:
    token = uuid.uuid4().hex[:12]
    exchange, queue_name = f"chaos.{token}", f"chaos.{token}.all"
    expected = await load(pg_dsn)
    sink = await RabbitMQSink.connect(amqp_url, exchange=exchange, confirm_timeout=5.0)
    admin = await aio_pika.connect(amqp_url)
    queue = await (await admin.channel()).declare_queue(queue_name, durable=True)
    await queue.bind(exchange, "#")
    await admin.close()
    store = await PostgresOutboxStore.connect(pg_dsn, connections=2)
    relay = Relay(store, [sink], config=RelayConfig(batch_size=500, concurrency=2))
    stop = asyncio.Event()
    runner = asyncio.create_task(relay.run(stop))
    conn = await asyncpg.connect(pg_dsn)
    try:
        async with asyncio.timeout(60):
            while relay.stats.published < EVENTS // 5:
                await asyncio.sleep(0.02)
        published_before = relay.stats.published
        with chaos.guaranteed_restart("rabbitmq"):
            await asyncio.to_thread(chaos.stop, "rabbitmq")
            assert relay.stats.published < EVENTS, "the backlog drained before the stop"
        async with asyncio.timeout(120):
            while await conn.fetchval("SELECT count(*) FROM tether_outbox") > 0:
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        chaos.start("rabbitmq")
        await asyncio.wait_for(runner, 30)
        await sink.close()
        await store.close()
        await conn.close()
    delivered = await read_ids(amqp_url, queue_name, exchange)
    print(
        f"published before the stop: {published_before}; {relay.stats}; "
        f"messages {len(delivered)}, distinct {len(set(delivered))}"
    )
    assert relay.stats.deferred > 0, "the stop should have deferred some batches"
    assert relay.stats.dead == 0 and relay.stats.retried == 0, relay.stats
    assert set(delivered) == expected
