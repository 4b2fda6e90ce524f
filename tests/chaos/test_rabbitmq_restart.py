"""RabbitMQ stopped and started again under a relay draining PostgreSQL: every event delivered.

Producers keep committing events the whole time; the relay keeps running with the same sink.
While the broker is down its batches are deferred (no attempt spent), the robust connection
comes back by itself, and afterwards a durable queue bound to the exchange holds every
committed event id (a batch cut by the stop may be there twice: consumers de-duplicate by
``message_id``). Nothing is left pending or dead in the outbox.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import aio_pika
import asyncpg
import pytest

from tests.support import chaos
from tether.outbox import add_event
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.rabbitmq import RabbitMQSink

pytestmark = [pytest.mark.chaos, pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.timeout(240)]


async def produce(dsn: str, committed: set[str], stop: asyncio.Event) -> None:
    """Commit 10 events at a time until told to stop (Postgres stays up in this test)."""
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            async with conn.transaction():
                ids = [
                    str(
                        (await add_event(conn, "OrderPlaced", {"pad": "x" * 200}, topic="order")).id
                    )
                    for _ in range(10)
                ]
            committed.update(ids)
            await asyncio.sleep(0.005)
    finally:
        await conn.close()


async def wait_until(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


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
    sink = await RabbitMQSink.connect(amqp_url, exchange=exchange, confirm_timeout=5.0)
    admin = await aio_pika.connect(amqp_url)
    queue = await (await admin.channel()).declare_queue(queue_name, durable=True)
    await queue.bind(exchange, "#")
    await admin.close()
    store = await PostgresOutboxStore.connect(pg_dsn, connections=2)
    relay = Relay(store, [sink], config=RelayConfig(batch_size=200, concurrency=2))
    stop_relay, stop_producing = asyncio.Event(), asyncio.Event()
    committed: set[str] = set()
    runner = asyncio.create_task(relay.run(stop_relay))
    producer = asyncio.create_task(produce(pg_dsn, committed, stop_producing))
    conn = await asyncpg.connect(pg_dsn)
    try:
        await wait_until(lambda: relay.stats.published >= 2_000, "first deliveries", 60)
        with chaos.guaranteed_restart("rabbitmq"):
            await asyncio.to_thread(chaos.stop, "rabbitmq")
            await wait_until(lambda: relay.stats.deferred > 0, "the relay to defer", 30)
        after_restart = relay.stats.published
        await wait_until(
            lambda: relay.stats.published >= after_restart + 2_000, "deliveries after restart", 90
        )
        stop_producing.set()
        await producer
        async with asyncio.timeout(60):
            while await conn.fetchval("SELECT count(*) FROM tether_outbox") > 0:
                await asyncio.sleep(0.1)
    finally:
        stop_producing.set()
        stop_relay.set()
        chaos.start("rabbitmq")
        await asyncio.wait_for(runner, 30)
        await sink.close()
        await store.close()
        await conn.close()
    delivered = await read_ids(amqp_url, queue_name, exchange)
    print(
        f"{relay.stats}; committed {len(committed)}, messages {len(delivered)}, "
        f"distinct {len(set(delivered))}"
    )
    assert relay.stats.dead == 0 and relay.stats.retried == 0, relay.stats
    assert set(delivered) == committed
