"""The RabbitMQ consumer against the real broker: what the contract cannot say generically.

Retry queues (a delay honoured, a long delay not holding back a short one, rounding and the
bound on their number), delivery counts from the broker on quorum and classic queues, the
lease, the dead-letter copy property by property, listing that only peeks, replay by id, a
connection cut under a running consumer, and a PostgreSQL outbox relay feeding a consumer end
to end.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.sinks.tcp_proxy import TcpProxy
from tests.support.consumers import Handler, failure, handled, orders, take, wait_for
from tether.consume import Consumer, RedeliveryPolicy
from tether.consume.rabbitmq import RabbitMQSource, dead_letter_box
from tether.core.errors import BrokerUnavailableError, ConfigError, NotFoundError
from tether.outbox import add_event
from tether.outbox.inbox import Inbox
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.rabbitmq import RabbitMQSink

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(90)]


@dataclass
class Broker:
    """A queue name and exchange of this test's own, Tether's sink on it, an admin channel."""

    url: str
    exchange: str
    queue: str
    sink: RabbitMQSink
    channel: AbstractChannel
    sources: list[RabbitMQSource] = field(default_factory=list)

    async def source(self, url: str | None = None, **kw: Any) -> RabbitMQSource:
        src = await RabbitMQSource.connect(
            url or self.url, queue=self.queue, exchange=self.exchange, **kw
        )
        self.sources.append(src)
        return src

    async def declare(self, **kw: Any) -> None:
        """Create the queues (so the sink's messages are routed) with no consumer left on them."""
        await (await self.source(**kw)).close()

    async def count(self, queue: str) -> int:
        declared = await self.channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0

    async def get(self, queue: str) -> AbstractIncomingMessage | None:
        q = await self.channel.get_queue(queue, ensure=False)
        return await q.get(no_ack=True, fail=False)


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[Broker]:
    token = uuid.uuid4().hex[:12]
    exchange, queue = f"consume.{token}", f"billing.{token}"
    sink = await RabbitMQSink.connect(amqp_url, exchange=exchange)
    admin = await aio_pika.connect(amqp_url)
    channel = await admin.channel()
    state = Broker(amqp_url, exchange, queue, sink, channel)
    try:
        yield state
    finally:
        retry_queues = {name for src in state.sources for name in src.retry_queues}
        for src in state.sources:
            await src.close()
        await sink.close()
        cleanup = await admin.channel()
        for name in (queue, f"{queue}.dlq", *retry_queues):
            await cleanup.queue_delete(name)
        await cleanup.exchange_delete(exchange)
        await admin.close()


async def test_a_retry_waits_in_its_retry_queue_then_comes_back_counted(broker: Broker) -> None:
    src = await broker.source()
    await broker.sink.publish(orders(1))
    [first] = await take(src)
    assert first.deliveries == 1
    await src.retry_later(first, 0.8)
    assert src.retry_queues == [f"{broker.queue}.retry.800"]
    assert await broker.count(f"{broker.queue}.retry.800") == 1
    started = time.monotonic()
    [second] = await take(src, limit=5)
    assert 0.8 * 0.9 <= time.monotonic() - started < 3.0
    assert (second.event_id, second.deliveries) == (first.event_id, 2)
    assert second.headers["x-tether-deliveries"] == "2"
    assert second.data == first.data and second.attributes == first.attributes
    await src.ack(second)
    assert await broker.count(broker.queue) == 0


async def test_a_long_delay_does_not_hold_back_a_short_one(broker: Broker) -> None:
    src = await broker.source()
    await broker.sink.publish(orders(2))
    slow, quick = await take(src, 2)
    started = time.monotonic()
    await src.retry_later(slow, 3.0)
    await src.retry_later(quick, 0.3)
    [back] = await take(src, limit=5)
    assert back.event_id == quick.event_id
    assert time.monotonic() - started < 2.0  # not behind the 3 s one
    await src.ack(back)
    [later] = await take(src, limit=8)
    assert later.event_id == slow.event_id
    assert time.monotonic() - started >= 3.0 * 0.9
    await src.ack(later)


async def test_delays_are_rounded_and_retry_queues_bounded(broker: Broker) -> None:
    src = await broker.source(retry_delays=[0.5], max_retry_queues=2)
    assert src.retry_queues == [f"{broker.queue}.retry.500"]
    await broker.sink.publish(orders(3))
    a, b, c = await take(src, 3)
    await src.retry_later(a, 10.7)  # rounded to 11.2 s (R20): a second queue
    await src.retry_later(b, 0.04)  # the bound is reached: the nearest queue, 0.5 s
    await src.retry_later(c, 0)  # no delay: straight back onto the queue
    assert src.retry_queues == [f"{broker.queue}.retry.500", f"{broker.queue}.retry.11200"]
    assert await broker.count(f"{broker.queue}.retry.11200") == 1
    back = await take(src, 2, limit=5)
    assert [d.event_id for d in back] == [c.event_id, b.event_id]
    for delivery in back:
        await src.ack(delivery)


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
async def test_the_broker_counts_redeliveries_after_a_consumer_died(
    broker: Broker, queue_type: str
) -> None:
    await broker.declare(queue_type=queue_type)
    await broker.sink.publish(orders(1))
    crashed = await broker.source(queue_type=queue_type)
    [first] = await take(crashed)
    assert first.deliveries == 1
    await crashed.close()  # its connection closes unsettled: the broker hands it out again
    src = await broker.source(queue_type=queue_type)
    [second] = await take(src)
    assert second.deliveries == 2
    await src.retry_later(second, 0)  # a copy whose header says 3
    [third] = await take(src)
    assert third.deliveries == 3
    await src.close()
    again = await broker.source(queue_type=queue_type)
    [fourth] = await take(again)
    # Copy header 3 plus one broker redelivery: x-delivery-count on a quorum queue, the
    # redelivered flag on a classic one.
    assert fourth.deliveries == 4
    assert ("x-delivery-count" in fourth.headers) == (queue_type == "quorum")
    await again.ack(fourth)


async def test_a_message_held_past_its_lease_goes_to_another_consumer(broker: Broker) -> None:
    stuck = await broker.source(lease=0.5)
    await broker.sink.publish(orders(1))
    [held] = await take(stuck)
    other = await broker.source()
    [rescued] = await take(other, limit=5)
    assert rescued.event_id == held.event_id
    assert rescued.deliveries >= 2  # more if it went back to the stuck one on the way
    await stuck.ack(held)  # released already: settling it does nothing, and breaks nothing
    assert await stuck.receive(10, 0.1) == []
    await other.ack(rescued)
    assert await broker.count(broker.queue) == 0


async def test_the_dead_letter_copy_keeps_body_properties_and_headers(broker: Broker) -> None:
    src = await broker.source()
    [event] = orders(1, tenant_id="acme")
    await broker.sink.publish([event])
    exchange = await broker.channel.get_exchange(broker.exchange)
    raw = aio_pika.Message(
        b"\xff not json",
        headers={"x-app": "kept", "x-n": 7},
        message_id="raw-1",
        correlation_id="c-1",
        type="Foreign",
    )
    await exchange.publish(raw, routing_key="order")
    box = await dead_letter_box(broker.url, broker.exchange, broker.queue)
    try:
        delivered = await take(src, 2)
        for delivery in delivered:
            await src.dead_letter(delivery, failure())
        assert await broker.count(broker.queue) == 0
        copy = await broker.get(f"{broker.queue}.dlq")
        assert copy is not None
        assert copy.body == event.data
        assert (copy.message_id, copy.type, copy.content_type) == (
            str(event.id),
            "OrderPlaced",
            "application/json",
        )
        assert copy.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        headers = copy.headers
        assert headers["cloudEvents_tenantid"] == "acme"
        assert headers["cloudEvents_id"] == str(event.id)
        assert headers["tether-dlq-kind"] == "handler"
        assert headers["tether-dlq-deliveries"] == "3"
        assert headers["tether-dlq-origin"] == broker.queue
        assert headers.get("x-delivery-count", 0) == 0  # the broker's count of this copy
        foreign = await broker.get(f"{broker.queue}.dlq")
        assert foreign is not None
        assert foreign.body == b"\xff not json"
        assert (foreign.headers["x-app"], foreign.headers["x-n"]) == ("kept", 7)
        assert (foreign.message_id, foreign.correlation_id) == ("raw-1", "c-1")
    finally:
        await box.close()


async def test_list_only_peeks_and_replay_moves_the_chosen_ones_back_fresh(
    broker: Broker,
) -> None:
    src = await broker.source()
    events = orders(3)
    await broker.sink.publish(events)
    for delivery in await take(src, 3):
        await src.dead_letter(delivery, failure())
    box = await dead_letter_box(broker.url, broker.exchange, broker.queue)
    try:
        letters = list(await box.list())
        assert [d.event_id for d in letters] == [str(e.id) for e in events]
        assert list(await box.list(limit=2)) == letters[:2]
        assert await box.list() == letters  # listing twice changes nothing

        async def all_three_back() -> bool:  # the queue's count lags behind the requeues
            return await broker.count(f"{broker.queue}.dlq") == 3

        await wait_for(all_three_back, "the peeked dead letters to be counted again", 5)
        assert len({d.id for d in letters}) == 3
        assert all(d.kind == "handler" and d.deliveries == 3 for d in letters)
        assert await box.replay([letters[1].id, "no-such-id"]) == 1
        [back] = await take(src)
        assert (back.event_id, back.deliveries) == (letters[1].event_id, 1)
        assert not any(k.startswith(("tether-dlq-", "x-tether-")) for k in back.headers)
        await src.dead_letter(back, failure(1))  # dead again: one failure record, the new one
        again = [d for d in await box.list() if d.event_id == back.event_id]
        assert [d.deliveries for d in again] == [1]
        assert await box.replay() == 3
        assert await box.list() == []
        assert sorted(d.event_id or "" for d in await take(src, 3)) == sorted(
            str(e.id) for e in events
        )
    finally:
        await box.close()


async def test_a_queue_deleted_under_the_consumer_is_declared_again(broker: Broker) -> None:
    src = await broker.source()
    await broker.sink.publish(orders(1))
    [delivery] = await take(src)
    await broker.channel.queue_delete(f"{broker.queue}.dlq")
    with pytest.raises(BrokerUnavailableError, match="refused the copy"):
        await src.dead_letter(delivery, failure())
    [again] = await take(src)  # reconnected, every queue declared again, the original back
    assert again.event_id == delivery.event_id
    await src.dead_letter(again, failure())
    assert await broker.count(f"{broker.queue}.dlq") == 1
    box = await dead_letter_box(broker.url, broker.exchange, broker.queue)
    try:
        with pytest.raises(ConfigError, match="list of dead-letter ids"):
            await box.replay("abc")  # type: ignore[arg-type]
    finally:
        await box.close()


async def test_names_and_settings_are_checked(broker: Broker) -> None:
    for bad in ("", "a b", "amq.x", "x" * 201):
        with pytest.raises(ConfigError, match="queue name"):
            await RabbitMQSource.connect(broker.url, queue=bad, exchange=broker.exchange)
    with pytest.raises(ConfigError, match="whole words"):
        await broker.source(bindings=["order#"])
    with pytest.raises(ConfigError, match="at least one binding"):
        await broker.source(bindings=[])
    with pytest.raises(ConfigError, match="prefetch"):
        await broker.source(prefetch=0)
    with pytest.raises(ConfigError, match="queue_type"):
        await broker.source(queue_type="stream")
    with pytest.raises(BrokerUnavailableError, match=r"guest:\*\*\*@127.0.0.1:1/: cannot reach"):
        await RabbitMQSource.connect(
            "amqp://guest:s3cret@127.0.0.1:1/", queue=broker.queue, timeout=1.0
        )
    with pytest.raises(NotFoundError, match=f"no queue '{broker.queue}'"):
        await dead_letter_box(broker.url, broker.exchange, broker.queue)
    await broker.source(queue_type="classic")
    with pytest.raises(ConfigError, match="exists with other settings"):
        await broker.source(queue_type="quorum")
    with pytest.raises(NotFoundError, match="no exchange 'nope"):
        await dead_letter_box(broker.url, f"nope.{broker.queue}", broker.queue)
    with pytest.raises(ConfigError, match="queue name"):
        await dead_letter_box(broker.url, broker.exchange, "a b")


async def test_a_silent_broker_makes_a_retry_unavailable_within_its_timeout(
    broker: Broker,
) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    src = await broker.source(f"amqp://guest:guest@127.0.0.1:{proxy.port}/", timeout=0.5)
    try:
        await broker.sink.publish(orders(1))
        [delivery] = await take(src)
        proxy.swallow_replies = True
        started = time.monotonic()
        with pytest.raises(BrokerUnavailableError, match="RabbitMQ"):
            await src.retry_later(delivery, 0.2)
        assert time.monotonic() - started < 3
        proxy.swallow_replies = False
        await proxy.cut()  # the old connection is abandoned; the next call opens another
        await proxy.start()
        [again] = await take(src, limit=10)
        assert again.event_id == delivery.event_id
        await src.ack(again)
    finally:
        await src.close()
        await proxy.cut()


# -- with the runner and PostgreSQL -------------------------------------------------------------


async def test_a_connection_cut_pauses_the_consumer_and_it_resumes_losing_nothing(
    broker: Broker, engine: AsyncEngine
) -> None:
    await broker.declare()
    events = orders(300)
    await broker.sink.publish(events)
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    src = await broker.source(f"amqp://guest:guest@127.0.0.1:{proxy.port}/", timeout=1.0)
    handler = Handler(fail_first=lambda n: n % 50 == 0)
    policy = RedeliveryPolicy(backoff=(0.2,), max_deliveries=3, jitter=0)
    consumer = Consumer(
        src,
        handler,
        transaction=engine.begin,
        inbox=Inbox("billing"),
        policy=policy,
        batch_size=20,
        wait=0.2,
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(consumer.run(stop))

    async def some() -> bool:
        return len(handler.calls) >= 60

    async def all_of_them() -> bool:
        # An ack lost in the cut puts its message back on the queue when the old connection
        # dies; it comes round again and the inbox turns it into a plain ack: wait for that too.
        return await handled(engine) == len(events) and await broker.count(broker.queue) == 0

    try:
        await wait_for(some, "the first events", 30)
        await proxy.cut()
        deadline = time.monotonic() + 5
        with pytest.raises(BrokerUnavailableError):  # what the running consumer meets too
            while time.monotonic() < deadline:  # (once the client has seen the socket close)
                await src.receive(1, 0.1)
        await asyncio.sleep(1.0)
        assert not runner.done()
        await proxy.start()
        await wait_for(all_of_them, "every event after the cut", 60)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 20)
        await proxy.cut()
    assert set(handler.calls) == {str(e.id) for e in events}
    # A verdict lost in the cut hands the message out again; the inbox keeps it to one run.
    assert await handled(engine) == len(events)
    assert await broker.count(broker.queue) == 0
    assert await broker.count(f"{broker.queue}.dlq") == 0


async def test_an_outbox_relay_feeds_a_consumer_each_event_handled_once(
    pg_dsn: str, broker: Broker, engine: AsyncEngine
) -> None:
    total = 500
    src = await broker.source(bindings=["order.#"])
    conn = await asyncpg.connect(pg_dsn)
    try:
        async with conn.transaction():
            for i in range(total):
                await add_event(conn, "OrderPlaced", {"n": i}, topic="order", aggregate_id=i % 7)
    finally:
        await conn.close()
    store = await PostgresOutboxStore.connect(pg_dsn, connections=2)
    relay = Relay(store, [broker.sink], config=RelayConfig(batch_size=100))
    handler = Handler(fail_first=lambda n: n % 25 == 0)
    policy = RedeliveryPolicy(backoff=(0.2,), max_deliveries=3, jitter=0.1)
    consumer = Consumer(
        src, handler, transaction=engine.begin, inbox=Inbox("billing"), policy=policy, wait=0.2
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(consumer.run(stop))]

    async def done() -> bool:
        return await handled(engine) == total

    try:
        await wait_for(done, "the consumer to handle every event", 60)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        await store.close()
    failed_once = [n for n in range(total) if n % 25 == 0]
    assert len(handler.calls) == total
    assert sorted(handler.calls.values()).count(2) == len(failed_once)
    assert await broker.count(broker.queue) == 0
    assert await broker.count(f"{broker.queue}.dlq") == 0
    # Jittered 0.2 s delays share the few retry queues the rounding leaves.
    assert 1 <= len(src.retry_queues) <= 3
