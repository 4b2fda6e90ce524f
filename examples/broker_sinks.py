"""Sinks for the brokers users run: RabbitMQ and Redis Streams.

Run: ``.venv/bin/python examples/broker_sinks.py`` (needs RabbitMQ on 127.0.0.1:5672 with
guest/guest and Redis on 127.0.0.1:6379). Publishes one event twice and one nobody listens
for, and prints what each broker holds afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aio_pika
import redis.asyncio as aioredis

from tether.core.envelope import Event, make_event
from tether.sinks.base import Outcome
from tether.sinks.rabbitmq import RabbitMQSink, cloudevent_attributes
from tether.sinks.redis_streams import RedisStreamsSink, read_entry

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
REDIS_URL = "redis://127.0.0.1:6379/0"


async def to_rabbitmq(events: Sequence[Event], amqp_url: str) -> Sequence[Outcome]:
    sink = await RabbitMQSink.connect(amqp_url, exchange="shop", routing_key="{topic}")
    try:
        return await sink.publish(events)  # persistent, confirmed; message_id = event id
    finally:
        await sink.close()


async def to_redis(events: Sequence[Event], redis_url: str) -> Sequence[Outcome]:
    sink = await RedisStreamsSink.connect(redis_url, stream="shop:{topic}", maxlen=100_000)
    try:
        return await sink.publish(events)  # XADD to "shop:<topic>", once per event id
    finally:
        await sink.close()


async def consume_rabbitmq(queue: aio_pika.abc.AbstractQueue) -> list[str]:
    seen: set[str] = set()
    handled = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        if message.message_id in seen:  # a re-published event: consumers de-duplicate by id
            continue
        seen.add(str(message.message_id))
        handled.append(cloudevent_attributes(message)["type"])
    return handled


async def consume_redis(client: aioredis.Redis) -> list[str]:
    entries = await client.xrange("shop:orders")
    return [read_entry(fields)[0]["type"] for _, fields in entries]


async def main() -> None:
    placed = make_event("OrderPlaced", {"order": "o-1"}, topic="orders")
    stray = make_event("Audit", {}, topic="audit")  # no queue is bound for "audit"
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    await channel.declare_exchange("shop", aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue("", exclusive=True)
    await queue.bind("shop", "orders")
    outcomes = await to_rabbitmq([placed, placed, stray], AMQP_URL)
    print("rabbitmq outcomes:", [o.ok for o in outcomes], "-", outcomes[2].error)
    print("rabbitmq consumer handled:", await consume_rabbitmq(queue))
    await channel.exchange_delete("shop")
    await connection.close()

    client = aioredis.Redis.from_url(REDIS_URL)
    await client.delete("shop:orders")
    outcomes = await to_redis([placed, placed], REDIS_URL)
    print("redis outcomes:", [o.ok for o in outcomes])
    print("redis stream holds:", await consume_redis(client))
    await client.delete("shop:orders", f"{{shop:orders}}:dedup:{placed.id}")
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
