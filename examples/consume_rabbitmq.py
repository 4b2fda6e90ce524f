"""A RabbitMQ consumer that dead-letters: events in through the sink, handled once each through
the inbox, a message that keeps failing moved to the dead-letter queue and replayed.

Run: ``.venv/bin/python examples/consume_rabbitmq.py`` (needs RabbitMQ on 127.0.0.1:5672,
guest/guest; the inbox lives in a throwaway SQLite file). ``docs/consume.md`` quotes this file;
``tests/integration/test_examples.py`` runs it.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aio_pika
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tether.consume import Consumer, RedeliveryPolicy
from tether.consume.rabbitmq import RabbitMQSource, dead_letter_box
from tether.core.envelope import Event, make_event
from tether.outbox.store_sqlite import SqliteOutboxStore
from tether.sinks.rabbitmq import RabbitMQSink

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


async def main(folder: Path) -> int:
    token = uuid.uuid4().hex[:8]  # names of its own, so parallel runs do not meet
    exchange, queue = f"shop.{token}", f"shipping.{token}"
    store = await SqliteOutboxStore.connect(str(folder / "shop.db"))  # creates the inbox table
    await store.close()
    engine = create_async_engine(f"sqlite+aiosqlite:///{folder / 'shop.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE shipments (item text)"))

    broken = True

    async def ship(event: Event, tx: Any) -> None:
        # Runs in the inbox's transaction: the row and the inbox entry commit together.
        if event.payload["item"] == "broken" and broken:
            raise ValueError("no such item")
        await tx.execute(text("INSERT INTO shipments VALUES (:i)"), {"i": event.payload["item"]})

    source = await RabbitMQSource.connect(
        AMQP_URL, exchange=exchange, queue=queue, bindings=["customer.#"]
    )
    consumer = Consumer(
        source,
        ship,
        transaction=engine.begin,
        policy=RedeliveryPolicy(backoff=(0.2,), max_deliveries=2),
        wait=0.2,
    )
    box = await dead_letter_box(AMQP_URL, exchange, queue)

    # The queue is bound now, so the sink's messages are routed to it.
    sink = await RabbitMQSink.connect(AMQP_URL, exchange=exchange)
    await sink.publish(
        [
            make_event("OrderPlaced", {"item": item}, aggregate_type="customer", aggregate_id="c1")
            for item in ("kettle", "broken", "mug")
        ]
    )

    async def run_until(done: Any) -> None:
        for _ in range(100):
            await consumer.run_once()
            if await done():
                return

    async def dead_letters_listed() -> bool:
        return len(await box.list()) == 1

    await run_until(dead_letters_listed)  # "broken" failed twice: dead-lettered
    print("dead letters:", [(d.type, d.kind, d.deliveries) for d in await box.list()])

    broken = False  # the bug is fixed: put it back on its queue
    print("replayed:", await box.replay())

    async def shipped_all() -> bool:
        async with engine.connect() as conn:
            return len((await conn.execute(text("SELECT item FROM shipments"))).all()) == 3

    await run_until(shipped_all)
    async with engine.connect() as conn:
        items = sorted(r[0] for r in await conn.execute(text("SELECT item FROM shipments")))
    print("shipped:", items)

    retry_queues = source.retry_queues
    await box.close()
    await source.close()
    await sink.close()
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    for name in (queue, f"{queue}.dlq", *retry_queues):
        await channel.queue_delete(name)
    await channel.exchange_delete(exchange)
    await connection.close()
    await engine.dispose()
    return 0 if items == ["broken", "kettle", "mug"] else 1


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(asyncio.run(main(Path(tmp))))
