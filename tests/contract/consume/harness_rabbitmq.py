"""The consumer contract's RabbitMQ harness: a queue of its own on an exchange of its own,
fed by Tether's RabbitMQ sink, everything deleted afterwards."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping

import aio_pika

from tests.contract.consume.harness import ConsumerHarness
from tests.support import services
from tether.consume.port import ConsumerSource, DeadLetterBox
from tether.consume.rabbitmq import RabbitMQSource, dead_letter_box
from tether.core.envelope import Event
from tether.sinks.rabbitmq import HEADER_PREFIX, RabbitMQSink

LEASE = 1.0
"""Seconds before a message a live but silent consumer holds is handed to another one."""


async def rabbitmq_harness() -> AsyncIterator[ConsumerHarness]:
    services.require("rabbitmq")
    url = services.AMQP_URL
    token = uuid.uuid4().hex[:12]
    exchange, queue = f"contract.{token}", f"contract.{token}"
    sink = await RabbitMQSink.connect(url, exchange=exchange, confirm_timeout=5.0)
    opened: list[RabbitMQSource] = []
    boxes: list[DeadLetterBox] = []

    async def open_source() -> ConsumerSource:
        source = await RabbitMQSource.connect(
            url, queue=queue, exchange=exchange, name="contract", lease=LEASE, prefetch=16
        )
        opened.append(source)
        return source

    async def dead_letters() -> DeadLetterBox:
        box = await dead_letter_box(url, exchange, queue)
        boxes.append(box)
        return box

    async def publish(event: Event) -> None:
        [outcome] = await sink.publish([event])
        assert outcome.ok, outcome.error

    async def publish_raw(attributes: Mapping[str, str], data: bytes) -> None:
        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchanged = await channel.get_exchange(exchange)
            headers = {HEADER_PREFIX + k: v for k, v in attributes.items()}
            await exchanged.publish(aio_pika.Message(data, headers=headers), routing_key="raw")
        finally:
            await connection.close()

    # The queue must exist before the first publish, or the sink's message is unroutable.
    await (await open_source()).close()
    opened.clear()
    try:
        yield ConsumerHarness(
            open_source, dead_letters, publish, publish_raw, redelivery=LEASE + 1.0
        )
    finally:
        retry_queues = {name for source in opened for name in source.retry_queues}
        for source in opened:
            await source.close()
        for box in boxes:
            await box.close()
        await sink.close()
        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel()
            for name in (queue, f"{queue}.dlq", *retry_queues):
                with contextlib.suppress(Exception):
                    await channel.queue_delete(name)
            await channel.exchange_delete(exchange)
        finally:
            await connection.close()
