"""The JetStream consumer against the real server: what the contract cannot say generically.

Delayed NAKs and the server's own delivery count, the consumer and dead-letter stream it
creates (and refuses to bend), the dead-letter copy header by header (and a crash between its
PubAck and the TERM leaving one copy, not two), a replay inside the duplicate window, a
connection cut under a running consumer, and a PostgreSQL outbox relay feeding a consumer end
to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import nats
import nats.js.errors
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.integration.sinks.tcp_proxy import TcpProxy
from tether.consume import Consumer, Delivery, Failure, RedeliveryPolicy, deadletter
from tether.consume.jetstream import (
    JetStreamSource,
    dead_letter_box,
    dead_letter_stream,
    dead_letter_subject,
)
from tether.core.envelope import Event, make_event
from tether.core.errors import BrokerUnavailableError, ConfigError
from tether.outbox import add_event
from tether.outbox.inbox import Inbox
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.jetstream import JetStreamSink

pytestmark = [pytest.mark.nats, pytest.mark.timeout(120)]

DURABLE = "billing"


@dataclass
class Stream:
    name: str
    prefix: str
    nc: NATS
    js: JetStreamContext
    sink: JetStreamSink

    async def publish(self, *events: Event) -> None:
        assert all(o.ok for o in await self.sink.publish(events))


@pytest.fixture
async def stream(nats_url: str) -> AsyncIterator[Stream]:
    token = uuid.uuid4().hex[:12]
    name, prefix = f"CONSUMEIT_{token}", f"consumeit{token}"
    sink = await JetStreamSink.connect(nats_url, subject_prefix=prefix, stream=name)
    nc = await nats.connect(nats_url)
    try:
        yield Stream(name, prefix, nc, nc.jetstream(), sink)
    finally:
        await sink.close()
        for each in (name, dead_letter_stream(name)):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(each)
        await nc.close()


@pytest.fixture
async def engine(pg_dsn: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(pg_dsn.replace("postgresql://", "postgresql+asyncpg://"))
    async with eng.begin() as conn:
        await conn.execute(text("CREATE TABLE handled (event_id text, n int)"))
    yield eng
    await eng.dispose()


def order(n: int, **kw: Any) -> Event:
    return make_event("OrderPlaced", {"n": n}, aggregate_type="order", aggregate_id=n, **kw)


async def receive_one(source: JetStreamSource, limit: float = 10.0) -> Delivery:
    deadline = time.monotonic() + limit
    while True:
        got = list(await source.receive(10, 0.2))
        if got:
            [delivery] = got
            return delivery
        assert time.monotonic() < deadline, "nothing was handed out in time"


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def failure(reason: str, deliveries: int) -> Failure:
    return Failure("handler", reason, deliveries, deadletter.now())


async def test_connect_creates_the_consumer_and_the_dead_letter_stream(
    nats_url: str, stream: Stream
) -> None:
    source = await JetStreamSource.connect(
        nats_url, stream=stream.name, durable=DURABLE, ack_wait=7
    )
    try:
        info = await stream.js.consumer_info(stream.name, DURABLE)
        assert info.config.ack_policy == AckPolicy.EXPLICIT
        assert info.config.max_deliver == -1  # the runner decides when to give up
        assert info.config.ack_wait == 7.0
        assert info.config.deliver_subject is None  # a pull consumer
        dlq = await stream.js.stream_info(dead_letter_stream(stream.name))
        assert dlq.config.subjects == [f"dlq.{stream.name}.>"]
        assert source.dead_letter_subject == f"dlq.{stream.name}.{DURABLE}"
    finally:
        await source.close()
    # Connecting again with another ack_wait updates the consumer in place.
    again = await JetStreamSource.connect(nats_url, stream=stream.name, durable=DURABLE, ack_wait=3)
    await again.close()
    assert (await stream.js.consumer_info(stream.name, DURABLE)).config.ack_wait == 3.0


async def test_bad_names_and_foreign_consumers_are_config_errors(
    nats_url: str, stream: Stream
) -> None:
    with pytest.raises(ConfigError, match=r"stream name 'a\.b' is invalid"):
        await JetStreamSource.connect(nats_url, stream="a.b", durable=DURABLE)
    with pytest.raises(ConfigError, match="durable name 'bill ing' is invalid"):
        await JetStreamSource.connect(nats_url, stream=stream.name, durable="bill ing")
    with pytest.raises(ConfigError, match=r"filter subject 'x\.>\.y' is invalid"):
        await JetStreamSource.connect(
            nats_url, stream=stream.name, durable=DURABLE, filter_subject="x.>.y"
        )
    with pytest.raises(ConfigError, match="does not exist"):
        await JetStreamSource.connect(nats_url, stream=f"NONE_{uuid.uuid4().hex}", durable="d")
    await stream.js.add_consumer(
        stream.name, ConsumerConfig(durable_name="pushy", deliver_subject="somewhere.else")
    )
    with pytest.raises(ConfigError, match="push consumer"):
        await JetStreamSource.connect(nats_url, stream=stream.name, durable="pushy")
    await stream.js.add_consumer(
        stream.name,
        ConsumerConfig(
            durable_name="filtered",
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=f"{stream.prefix}.order",
        ),
    )
    with pytest.raises(ConfigError, match="filters"):
        await JetStreamSource.connect(nats_url, stream=stream.name, durable="filtered")
    with pytest.raises(BrokerUnavailableError, match="cannot reach NATS"):
        await JetStreamSource.connect(
            "nats://127.0.0.1:1", stream=stream.name, durable=DURABLE, connect_timeout=1
        )


async def test_a_nak_delay_is_honoured_and_the_server_counts_deliveries(
    nats_url: str, stream: Stream
) -> None:
    await stream.publish(order(1))
    source = await JetStreamSource.connect(nats_url, stream=stream.name, durable=DURABLE)
    try:
        first = await receive_one(source)
        assert first.deliveries == 1
        assert first.origin == f"{stream.prefix}.order"
        for delay, expected in ((0.6, 2), (1.2, 3)):
            sent = time.monotonic()
            await source.retry_later(first, delay)
            assert list(await source.receive(10, delay * 0.5)) == []  # not before its time
            again = await receive_one(source)
            assert time.monotonic() - sent >= delay * 0.95
            assert again.deliveries == expected
            assert again.event_id == first.event_id
            first = again
        info = await stream.js.consumer_info(stream.name, DURABLE)
        assert info.num_redelivered == 1 and info.num_ack_pending == 1
        await source.ack(first)
        assert list(await source.receive(10, 0.5)) == []
    finally:
        await source.close()


async def test_the_dead_letter_copy_keeps_every_original_header(
    nats_url: str, stream: Stream
) -> None:
    event = order(
        2,
        tenant_id="acme",
        user_id="zoë 100%",  # percent-encoded by the sink, copied as it travelled
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        correlation_id="corr-1",
    )
    await stream.publish(event)
    original = await stream.js.get_msg(stream.name, 1)
    source = await JetStreamSource.connect(nats_url, stream=stream.name, durable=DURABLE)
    box = await dead_letter_box(nats_url, stream.name, DURABLE)
    try:
        delivery = await receive_one(source)
        assert delivery.attributes["userid"] == "zoë 100%"
        reason = "ValueError: carte refusée à 100% (lot 7)"
        await source.dead_letter(delivery, failure(reason, 5))
        copy = await stream.js.get_msg(dead_letter_stream(stream.name), 1)
        assert copy.subject == dead_letter_subject(stream.name, DURABLE)
        assert copy.data == event.data
        assert original.headers is not None and copy.headers is not None
        for name, value in original.headers.items():
            if name == "Nats-Msg-Id":
                assert copy.headers["tether-dlq-msg-id"] == value
            else:
                assert copy.headers[name] == value, name
        assert copy.headers["Nats-Msg-Id"] == f"{DURABLE}:1"
        assert copy.headers[deadletter.ORIGIN] == f"{stream.prefix}.order"
        [letter] = await box.list()
        assert letter.id == "1"
        assert letter.event_id == str(event.id)
        assert letter.reason == reason  # percent-encoded on the wire, decoded here
        assert letter.deliveries == 5
        assert letter.origin == f"{stream.prefix}.order"
        await asyncio.sleep(0.3)
        assert list(await source.receive(10, 0.3)) == []  # terminated: never again
    finally:
        await source.close()
        await box.close()


async def test_a_crash_between_the_copy_and_the_term_leaves_one_copy(
    nats_url: str, stream: Stream
) -> None:
    await stream.publish(order(3))
    crashed = await JetStreamSource.connect(
        nats_url, stream=stream.name, durable=DURABLE, ack_wait=1
    )
    delivery = await receive_one(crashed)
    copy = crashed._copy_headers(delivery, delivery.handle, failure("boom", 1))  # type: ignore[arg-type]
    await crashed._publish_copy(await crashed._link.client(), delivery.data, copy)
    await crashed.close()  # dies before the TERM
    survivor = await JetStreamSource.connect(
        nats_url, stream=stream.name, durable=DURABLE, ack_wait=1
    )
    try:
        again = await receive_one(survivor)
        assert again.deliveries == 2
        await survivor.dead_letter(again, failure("boom", 2))
        info = await stream.js.stream_info(dead_letter_stream(stream.name))
        assert info.state.messages == 1  # the second copy fell in the duplicate window
    finally:
        await survivor.close()


async def test_a_replay_inside_the_duplicate_window_is_not_swallowed(
    nats_url: str, stream: Stream
) -> None:
    event = order(4)
    await stream.publish(event)
    source = await JetStreamSource.connect(nats_url, stream=stream.name, durable=DURABLE)
    box = await dead_letter_box(nats_url, stream.name, DURABLE)
    try:
        await source.dead_letter(await receive_one(source), failure("boom", 1))
        await stream.publish(event)  # the producer's own re-publish is still de-duplicated
        assert (await stream.js.stream_info(stream.name)).state.messages == 1
        with pytest.raises(ConfigError, match="'x1' is not a stream sequence"):
            await box.replay(["x1"])
        assert await box.replay(["99"]) == 0  # no such dead letter
        assert await box.replay() == 1
        replayed = await receive_one(source)
        assert replayed.deliveries == 1
        assert replayed.event_id == str(event.id)
        assert replayed.headers["Nats-Msg-Id"] == f"{event.id}:replay:1"
        assert deadletter.ORIGIN not in replayed.headers
        assert "tether-dlq-msg-id" not in replayed.headers
        assert await box.list() == []
        await source.ack(replayed)
    finally:
        await source.close()
        await box.close()


async def test_a_message_without_attributes_is_delivered_not_raised(
    nats_url: str, stream: Stream
) -> None:
    await stream.js.publish(f"{stream.prefix}.junk", b"\x00\xff", headers={"x-other": "1"})
    await stream.js.publish(f"{stream.prefix}.junk", b"")
    source = await JetStreamSource.connect(nats_url, stream=stream.name, durable=DURABLE)
    try:
        got: list[Delivery] = []
        deadline = time.monotonic() + 10
        while len(got) < 2:
            assert time.monotonic() < deadline
            got += await source.receive(10, 0.2)
        assert [d.attributes for d in got] == [{}, {}]
        assert [d.data for d in got] == [b"\x00\xff", b""]
        assert got[0].headers == {"x-other": "1"}
    finally:
        await source.close()


async def test_a_connection_cut_pauses_the_runner_and_nothing_is_lost(
    stream: Stream, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    events = [order(n) for n in range(300)]
    await stream.publish(*events)
    proxy = TcpProxy("127.0.0.1", 4222)
    await proxy.start()
    url = f"nats://127.0.0.1:{proxy.port}"
    source = await JetStreamSource.connect(url, stream=stream.name, durable=DURABLE, ack_wait=2)
    calls: list[str] = []

    async def handler(event: Event, tx: Any) -> None:
        calls.append(str(event.id))
        await tx.execute(
            text("INSERT INTO handled VALUES (:id, :n)"),
            {"id": str(event.id), "n": event.payload["n"]},
        )
        await asyncio.sleep(0.002)

    consumer = Consumer(
        source, handler, transaction=engine.begin, inbox=Inbox(DURABLE), batch_size=20, wait=0.2
    )
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="tether.consume")
    task = asyncio.create_task(consumer.run(stop))

    async def some_handled() -> bool:
        return len(calls) >= 60

    async def paused() -> bool:
        return any("broker unavailable" in r.getMessage() for r in caplog.records)

    async def all_handled() -> bool:
        return await count(engine) == len(events)

    try:
        await wait_for(some_handled, "the first events", 30)
        await proxy.cut()
        await wait_for(paused, "the runner to pause", 15)
        during = len(calls)
        await asyncio.sleep(1.0)
        assert len(calls) - during <= 20  # at most the batch in hand when the cut came
        await proxy.start()
        await wait_for(all_handled, "every event after the cut", 60)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await source.close()
        await proxy.cut()
    assert sorted(calls) == sorted(str(e.id) for e in events)  # each one exactly once
    assert not task.exception()


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(text("SELECT count(DISTINCT event_id) FROM handled"))).scalar_one()
        )


async def load_outbox(dsn: str, n: int) -> set[str]:
    conn = await asyncpg.connect(dsn)
    ids: set[str] = set()
    try:
        async with conn.transaction():
            for i in range(n):
                ref = await add_event(
                    conn,
                    "OrderPlaced",
                    {"n": i},
                    aggregate_type="order",
                    aggregate_id=i % 17,
                    topic="order",
                )
                ids.add(str(ref.id))
    finally:
        await conn.close()
    return ids


async def test_an_outbox_relay_feeds_a_consumer_every_event_once(
    nats_url: str, pg_dsn: str, stream: Stream, engine: AsyncEngine
) -> None:
    expected = await load_outbox(pg_dsn, 500)
    store = await PostgresOutboxStore.connect(pg_dsn, connections=2)
    relay = Relay(store, [stream.sink], config=RelayConfig(batch_size=100))
    source = await JetStreamSource.connect(nats_url, stream=stream.name, durable=DURABLE)
    box = await dead_letter_box(nats_url, stream.name, DURABLE)
    failed_once: set[str] = set()
    successes: list[str] = []

    async def handler(event: Event, tx: Any) -> None:
        await tx.execute(
            text("INSERT INTO handled VALUES (:id, :n)"),
            {"id": str(event.id), "n": event.payload["n"]},
        )
        key = str(event.id)
        if event.payload["n"] % 25 == 0 and key not in failed_once:
            failed_once.add(key)
            raise RuntimeError(f"transient failure of {event.payload['n']}")
        successes.append(key)

    consumer = Consumer(
        source,
        handler,
        transaction=engine.begin,
        inbox=Inbox(DURABLE),
        policy=RedeliveryPolicy(backoff=(0.3,), max_deliveries=3, jitter=0),
        batch_size=64,
        wait=0.2,
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(consumer.run(stop))]

    async def all_handled() -> bool:
        return await count(engine) == len(expected)

    try:
        await wait_for(all_handled, "every event to be handled", 90)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
        await store.close()
        await source.close()
    try:
        assert sorted(successes) == sorted(expected)  # exactly once each, failures included
        assert len(failed_once) == 20
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT count(*) FROM handled"))).scalar_one()
            inbox = (
                await conn.execute(
                    text("SELECT count(*) FROM tether_inbox WHERE consumer = :c"), {"c": DURABLE}
                )
            ).scalar_one()
        assert rows == 500 and inbox == 500  # failed tries rolled back with their inbox row
        assert relay.stats.dead == 0
        letters: Sequence[Any] = await box.list()
        assert letters == []
    finally:
        await box.close()


async def test_a_dead_letter_whose_origin_has_no_stream_stays_put(
    nats_url: str, stream: Stream
) -> None:
    source = await JetStreamSource.connect(nats_url, stream=stream.name, durable=DURABLE)
    await source.close()  # it created the dead-letter stream
    nowhere = f"nowhere{uuid.uuid4().hex}.order"
    await stream.js.publish(
        dead_letter_subject(stream.name, DURABLE),
        b"{}",
        headers={deadletter.ORIGIN: nowhere, "ce-id": str(order(1).id), "ce-type": "T"},
    )
    box = await dead_letter_box(nats_url, stream.name, DURABLE)
    try:
        with pytest.raises(ConfigError, match="no stream listens on"):
            await box.replay()
        [letter] = await box.list()
        assert letter.origin == nowhere
    finally:
        await box.close()


async def test_a_deleted_dead_letter_stream_is_created_again(nats_url: str, stream: Stream) -> None:
    await stream.publish(order(6))
    source = await JetStreamSource.connect(nats_url, stream=stream.name, durable=DURABLE)
    try:
        await stream.js.delete_stream(dead_letter_stream(stream.name))
        await source.dead_letter(await receive_one(source), failure("boom", 1))
        info = await stream.js.stream_info(dead_letter_stream(stream.name))
        assert info.state.messages == 1
    finally:
        await source.close()
