"""The RabbitMQ sink against the real broker: what the shared contract suite cannot see.

Unroutable messages, broker nacks, a deleted exchange, a hung broker, a cut connection and the
reconnect after it, and the AMQP properties a consumer reads.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika
import aiormq.exceptions
import pytest
from aio_pika.abc import AbstractChannel, AbstractQueue

from tests.integration.sinks.tcp_proxy import TcpProxy
from tether.core.envelope import Event, make_event
from tether.core.errors import ConfigError, SinkUnavailableError
from tether.sinks.rabbitmq import RabbitMQSink, cloudevent_attributes

pytestmark = pytest.mark.rabbitmq


@dataclass
class Broker:
    sink: RabbitMQSink
    channel: AbstractChannel
    exchange: str
    proxy: TcpProxy

    async def queue(self, routing_key: str, **arguments: object) -> AbstractQueue:
        queue = await self.channel.declare_queue("", exclusive=True, arguments=arguments or None)
        await queue.bind(self.exchange, routing_key)
        return queue


@pytest.fixture(params=[True, False], ids=["own-frames", "basic-publish"])
async def broker(amqp_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    """The sink writing its own frames, or aiormq's ``basic_publish`` per message."""
    exchange = f"test.{uuid.uuid4().hex[:12]}"
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    sink = await RabbitMQSink.connect(
        f"amqp://guest:guest@127.0.0.1:{proxy.port}/",
        exchange=exchange,
        confirm_timeout=1.0,
        raw_frames=request.param,
    )
    admin = await aio_pika.connect(amqp_url)
    channel = await admin.channel()
    try:
        yield Broker(sink, channel, exchange, proxy)
    finally:
        await sink.close()
        await proxy.cut()
        await channel.exchange_delete(exchange)
        await admin.close()


async def drained(queue: AbstractQueue) -> int:
    """How many messages the queue held (it is emptied)."""
    n = 0
    while await queue.get(no_ack=True, fail=False) is not None:
        n += 1
    return n


def orders(n: int, **kw: object) -> list[Event]:
    return [
        make_event("OrderPlaced", {"n": i}, aggregate_type="order", aggregate_id=i, **kw)  # type: ignore[arg-type]
        for i in range(n)
    ]


async def test_an_unroutable_message_fails_retryably_and_alone(broker: Broker) -> None:
    await broker.queue("order")
    stray = make_event("Stray", {}, topic="nobody.listens")
    batch = [*orders(2), stray, *orders(2)]
    outcomes = await broker.sink.publish(batch)
    assert [o.ok for o in outcomes] == [True, True, False, True, True]
    assert outcomes[2].retryable
    assert "unroutable" in (outcomes[2].error or "")
    assert "'nobody.listens'" in (outcomes[2].error or "")
    assert broker.sink.stats["returned"] == 1


async def test_a_consumer_reads_id_type_time_and_every_attribute(broker: Broker) -> None:
    queue = await broker.queue("#")
    [event] = orders(1, tenant_id="acme", user_id="Zoë")
    await broker.sink.publish([event])
    message = await queue.get(no_ack=True)
    assert message.message_id == str(event.id)
    assert message.type == "OrderPlaced"
    assert message.content_type == "application/json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.timestamp is not None
    assert int(message.timestamp.timestamp()) == int(event.created_at.timestamp())
    assert message.routing_key == "order"
    assert message.body == event.data
    assert cloudevent_attributes(message) == event.cloudevent_attributes()


async def test_routing_by_type(amqp_url: str, broker: Broker) -> None:
    sink = await RabbitMQSink.connect(amqp_url, exchange=broker.exchange, routing_key="ev.{type}")
    try:
        queue = await broker.queue("ev.OrderPlaced")
        assert all(o.ok for o in await sink.publish(orders(3)))
        assert await drained(queue) == 3
    finally:
        await sink.close()


async def test_a_nack_from_a_full_queue_is_retryable(broker: Broker) -> None:
    await broker.queue("order", **{"x-max-length": 2, "x-overflow": "reject-publish"})
    outcomes = await broker.sink.publish(orders(4))
    assert sorted(o.ok for o in outcomes) == [False, False, True, True]
    refused = [o for o in outcomes if not o.ok]
    assert all(o.retryable and "basic.nack" in (o.error or "") for o in refused)


async def test_permanent_failures_are_decided_before_sending(broker: Broker) -> None:
    queue = await broker.queue("#")
    sink = broker.sink
    sink.max_message_bytes = 64
    big = make_event("OrderPlaced", {"pad": "x" * 100}, topic="order")
    outcomes = await sink.publish([big, *orders(1)])
    assert [(o.ok, o.retryable) for o in outcomes] == [(False, False), (True, True)]
    assert "max_message_bytes" in (outcomes[0].error or "")
    assert await drained(queue) == 1


async def test_a_routing_key_the_event_cannot_fill_fails_that_event(
    amqp_url: str, broker: Broker
) -> None:
    sink = await RabbitMQSink.connect(amqp_url, exchange=broker.exchange, routing_key="{tenant}")
    try:
        await broker.queue("acme")
        [with_tenant] = orders(1, tenant_id="acme")
        outcomes = await sink.publish([*orders(1), with_tenant])
        assert [(o.ok, o.retryable) for o in outcomes] == [(False, False), (True, True)]
        assert "needs ['tenant']" in (outcomes[0].error or "")
    finally:
        await sink.close()


async def test_a_deleted_exchange_fails_the_batch_then_comes_back(
    amqp_url: str, broker: Broker
) -> None:
    await broker.channel.exchange_delete(broker.exchange)
    outcomes = await broker.sink.publish(orders(2))
    assert all(not o.ok and o.retryable and "NOT_FOUND" in (o.error or "") for o in outcomes)
    # The sink's channel reopens and declares the exchange again; a queue bound then gets events.
    admin = await aio_pika.connect(amqp_url)
    try:
        async with asyncio.timeout(10):
            while True:
                await broker.sink._channel.ready()
                channel = await admin.channel()
                try:
                    queue = await channel.declare_queue("", exclusive=True)
                    await queue.bind(broker.exchange, "order")
                    break
                except aiormq.exceptions.ChannelNotFoundEntity:  # not declared again yet
                    await asyncio.sleep(0.05)
        assert all(o.ok for o in await broker.sink.publish(orders(1)))
        assert await drained(queue) == 1
    finally:
        await admin.close()


async def test_a_hung_broker_makes_the_sink_unavailable(broker: Broker) -> None:
    await broker.queue("#")
    broker.proxy.swallow_replies = True
    with pytest.raises(SinkUnavailableError, match="confirmed none of 3"):
        await broker.sink.publish(orders(3))
    channel = await broker.sink._channel.get_underlay_channel()
    assert not channel.message_id_delivery_tag  # the batch left nothing behind
    if broker.sink._raw:
        assert not channel.confirmations


async def test_a_cut_connection_makes_the_sink_unavailable_until_it_reconnects(
    broker: Broker,
) -> None:
    queue = await broker.queue("#")
    await broker.proxy.cut()
    with pytest.raises(SinkUnavailableError):
        await broker.sink.publish(orders(2))
    await broker.proxy.start()
    await broker.sink._channel.ready()  # the robust connection is back
    assert all(o.ok for o in await broker.sink.publish(orders(2)))
    assert await drained(queue) == 2


async def test_connect_errors_name_the_problem(amqp_url: str) -> None:
    with pytest.raises(
        SinkUnavailableError, match="cannot reach RabbitMQ at amqp://guest:\\*\\*\\*@"
    ):
        await RabbitMQSink.connect("amqp://guest:guest@127.0.0.1:1/", connect_timeout=1.0)
    with pytest.raises(ConfigError, match="refused the credentials"):
        await RabbitMQSink.connect("amqp://guest:wrong@127.0.0.1:5672/", connect_timeout=3.0)
    with pytest.raises(ConfigError, match="routing key template"):
        await RabbitMQSink.connect(amqp_url, exchange="test.unused", routing_key="{nope}")


async def test_an_exchange_of_another_type_is_a_config_error(amqp_url: str, broker: Broker) -> None:
    name = f"test.direct.{uuid.uuid4().hex[:8]}"
    await broker.channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT)
    try:
        with pytest.raises(ConfigError, match="durable topic exchange"):
            await RabbitMQSink.connect(amqp_url, exchange=name)
    finally:
        await broker.channel.exchange_delete(name)
