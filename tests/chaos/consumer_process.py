"""A consumer process for chaos tests: one broker's source -> the runner -> PostgreSQL.

``python -m tests.chaos.consumer_process BROKER DSN ORIGIN HANG_ON PAUSE``. The handler writes a row
per event into ``handled`` in the inbox's transaction; the event whose payload ``n`` equals
``HANG_ON`` prints ``hanging <id>`` and never returns, so a test can SIGKILL the process while a
handler (and its transaction) is open.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.services import AMQP_URL, NATS_URL, REDIS_URL
from tether.consume import Consumer, ConsumerSource, RedeliveryPolicy
from tether.core.envelope import Event

REDELIVERY = 2.0
"""Seconds after which a message its dead consumer left unsettled is handed out again."""


async def open_source(broker: str, origin: str) -> ConsumerSource:
    if broker == "nats":
        from tether.consume.jetstream import JetStreamSource

        return await JetStreamSource.connect(
            NATS_URL, stream=origin, durable="billing", ack_wait=REDELIVERY
        )
    if broker == "rabbitmq":
        from tether.consume.rabbitmq import RabbitMQSource

        return await RabbitMQSource.connect(AMQP_URL, queue=origin, exchange=origin, name="billing")
    from tether.consume.redis_streams import RedisStreamsSource

    return await RedisStreamsSource.connect(
        REDIS_URL, stream=origin, group="billing", claim_idle=REDELIVERY
    )


async def main(broker: str, dsn: str, origin: str, hang_on: int, pause: float) -> None:
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"))
    source = await open_source(broker, origin)

    async def handle(event: Event, tx: Any) -> None:
        n = event.payload["n"]
        await tx.execute(
            text("INSERT INTO handled VALUES (:id, :n, :pid)"),
            {"id": str(event.id), "n": n, "pid": os.getpid()},
        )
        if n == hang_on:
            print(f"hanging {event.id}", flush=True)
            await asyncio.sleep(3600)
        await asyncio.sleep(pause)

    consumer = Consumer(
        source,
        handle,
        transaction=engine.begin,
        policy=RedeliveryPolicy(backoff=(0.2,), max_deliveries=5),
        wait=0.2,
    )
    print("consumer ready", flush=True)
    await consumer.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4], int(sys.argv[4]), float(sys.argv[5])))
