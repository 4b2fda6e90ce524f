"""The sink contract (``tether.sinks.base``), one suite run against every adapter.

Each adapter comes with a harness: how to read back what the target stored, how to make one
event be refused and how to make the whole target unavailable. ``SinkFeatures`` switch cases
on and off, in the spirit of Watermill's universal Pub/Sub tests.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import nats
import orjson
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.js.api import StreamConfig

from tests.integration.sinks.tcp_proxy import TcpProxy
from tests.support.http_receiver import Answer, Received, Receiver
from tests.support.moto_server import CREDENTIALS, REGION
from tests.support.pubsub_emulator import PROJECT as PUBSUB_PROJECT
from tests.support.pubsub_emulator import Topic, pubsub_emulator_fixture  # noqa: F401
from tests.support.sqs_admin import Queue, sqs_client
from tether.core.envelope import Event, make_event
from tether.core.errors import SinkError, SinkUnavailableError
from tether.sinks.base import Sink, SinkFeatures
from tether.sinks.http import HttpSink
from tether.sinks.jetstream import JetStreamSink, decode_header_value
from tether.sinks.log import LogSink
from tether.sinks.memory import MemorySink
from tether.sinks.pubsub import PubSubSink
from tether.sinks.pubsub import cloudevent_attributes as pubsub_attributes
from tether.sinks.rabbitmq import RabbitMQSink, cloudevent_attributes
from tether.sinks.redis_streams import RedisStreamsSink, read_entry
from tether.sinks.sqs import FIFO_FEATURES, STANDARD_FEATURES, SqsSink
from tether.sinks.sqs import cloudevent_attributes as sqs_attributes

MAX_MSG_SIZE = 8 * 1024


@dataclass(frozen=True)
class Stored:
    """One message as the target holds it: CloudEvents attributes and the payload."""

    attrs: dict[str, str]
    payload: Any


@dataclass
class Harness:
    sink: Sink
    features: SinkFeatures
    read_back: Callable[[], Awaitable[list[Stored]]]
    stored_count: Callable[[], Awaitable[int]]
    make_unavailable: Callable[[], Awaitable[None]]
    refused_event: Callable[[], Event] | None = None
    large_batch: int = 5000
    """Events ``test_large_batch`` sends (fewer where the target slows down as it fills)."""
    envelope: tuple[str, ...] | None = None
    """The attributes the target keeps, when its format carries only some of the envelope."""


def an_event(i: int = 0, **kw: Any) -> Event:
    defaults: dict[str, Any] = {
        "aggregate_type": "order",
        "aggregate_id": f"o-{i}",
        "tenant_id": "acme",
        "correlation_id": f"corr-{i}",
    }
    return make_event("OrderPlaced", {"n": i, "pad": "x" * 200}, **(defaults | kw))


def events(n: int) -> list[Event]:
    return [an_event(i) for i in range(n)]


# -- harnesses --------------------------------------------------------------------------------


async def memory_harness() -> AsyncGenerator[Harness, None]:
    sink = MemorySink()

    async def read_back() -> list[Stored]:
        return [Stored(e.cloudevent_attributes(), e.payload) for e in sink.events]

    async def stored_count() -> int:
        return len(sink.events)

    async def make_unavailable() -> None:
        sink.unavailable = True

    def refused_event() -> Event:
        event = an_event(999)
        sink.fail_ids({event.id}, "refused by test", retryable=False)
        return event

    yield Harness(sink, sink.features, read_back, stored_count, make_unavailable, refused_event)
    await sink.close()


async def log_harness() -> AsyncGenerator[Harness, None]:
    stream = io.StringIO()
    sink = LogSink(stream)
    lines: list[str] = []

    def parsed() -> list[str]:
        if not stream.closed:
            lines[:] = stream.getvalue().splitlines()
        return lines

    async def read_back() -> list[Stored]:
        out = []
        for line in parsed():
            obj = orjson.loads(line)
            data = obj.pop("data")
            out.append(Stored(obj, data))
        return out

    async def stored_count() -> int:
        return len(parsed())

    async def make_unavailable() -> None:
        parsed()
        stream.close()

    yield Harness(sink, LogSink.features, read_back, stored_count, make_unavailable)
    await sink.close()


async def jetstream_harness(nats_url: str, own: bool = True) -> AsyncGenerator[Harness, None]:
    """``own``: the sink's own connection (``connect()``); else a nats-py client the test
    owns and hands to ``JetStreamSink(nc)``."""
    token = uuid.uuid4().hex[:12]
    prefix, stream = f"contract{token}", f"CONTRACT_{token}"
    admin = await nats.connect(nats_url)
    js = admin.jetstream()
    await js.add_stream(
        StreamConfig(
            name=stream, subjects=[f"{prefix}.>"], duplicate_window=60, max_msg_size=MAX_MSG_SIZE
        )
    )
    proxy = TcpProxy("127.0.0.1", int(nats_url.rsplit(":", 1)[1]))
    await proxy.start()
    client: NATS | None = None
    if own:
        sink = await JetStreamSink.connect(proxy.url, subject_prefix=prefix, ack_timeout=5.0)
    else:
        client = await nats.connect(proxy.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        sink = JetStreamSink(client, subject_prefix=prefix, ack_timeout=2.0)
        await sink.start()

    async def stored_count() -> int:
        return (await js.stream_info(stream)).state.messages

    async def read_back() -> list[Stored]:
        out = []
        for seq in range(1, (await js.stream_info(stream)).state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            headers = msg.headers or {}
            attrs = {
                k[3:]: decode_header_value(v) for k, v in headers.items() if k.startswith("ce-")
            }
            assert headers["Nats-Msg-Id"] == attrs["id"]
            out.append(Stored(attrs, orjson.loads(msg.data or b"null")))
        return out

    async def make_unavailable() -> None:
        await proxy.cut()

    def refused_event() -> Event:
        # Larger than the stream's max_msg_size: JetStream answers with an error ack (400).
        return make_event("OrderPlaced", {"pad": "x" * (MAX_MSG_SIZE + 100)}, topic="order")

    try:
        yield Harness(
            sink, JetStreamSink.features, read_back, stored_count, make_unavailable, refused_event
        )
    finally:
        await sink.close()
        if client is not None:
            await client.close()
        await proxy.cut()
        await js.delete_stream(stream)
        await admin.close()


async def rabbitmq_harness(amqp_url: str, raw: bool = True) -> AsyncGenerator[Harness, None]:
    """A fresh topic exchange, one durable queue bound to it with ``#``; the sink reaches the
    broker through a proxy the test can cut. ``raw``: the sink's own frames, else aiormq's
    ``basic_publish`` per message."""
    token = uuid.uuid4().hex[:12]
    exchange, queue_name = f"contract.{token}", f"contract.{token}.all"
    proxy = TcpProxy("127.0.0.1", int(amqp_url.rsplit(":", 1)[1].strip("/")))
    await proxy.start()
    sink = await RabbitMQSink.connect(
        f"amqp://guest:guest@127.0.0.1:{proxy.port}/",
        exchange=exchange,
        max_message_bytes=MAX_MSG_SIZE,
        # Generous: the large batch goes through the Python proxy on a shared, loaded machine,
        # and no case here waits on a confirm timeout.
        confirm_timeout=30.0,
        raw_frames=raw,
    )
    admin = await aio_pika.connect(amqp_url)
    channel = await admin.channel()
    queue = await channel.declare_queue(queue_name, durable=True)
    await queue.bind(exchange, "#")
    seen: list[Stored] = []

    async def drain() -> None:
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            seen.append(Stored(cloudevent_attributes(message), orjson.loads(message.body)))
            assert message.message_id == seen[-1].attrs["id"]
            assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT

    async def read_back() -> list[Stored]:
        await drain()
        return list(seen)

    async def stored_count() -> int:
        await drain()
        return len(seen)

    async def make_unavailable() -> None:
        await proxy.cut()

    def refused_event() -> Event:
        # Over max_message_bytes: refused before sending (the broker would close the channel).
        return make_event("OrderPlaced", {"pad": "x" * (MAX_MSG_SIZE + 100)}, topic="order")

    try:
        yield Harness(
            sink, RabbitMQSink.features, read_back, stored_count, make_unavailable, refused_event
        )
    finally:
        await sink.close()
        await proxy.cut()
        await queue.delete(if_unused=False, if_empty=False)
        await channel.exchange_delete(exchange)
        await admin.close()


async def redis_harness(redis_url: str) -> AsyncGenerator[Harness, None]:
    """Streams named ``contract<token>:<topic>``; the key of topic ``wrongtype`` is a string,
    so Redis refuses an XADD to it (WRONGTYPE)."""
    token = uuid.uuid4().hex[:12]
    prefix = f"contract{token}"
    admin = aioredis.Redis.from_url(redis_url)
    await admin.set(f"{prefix}:wrongtype", "not a stream")
    host_port = redis_url.split("://", 1)[1].split("/", 1)[0]
    proxy = TcpProxy("127.0.0.1", int(host_port.rsplit(":", 1)[1]))
    await proxy.start()
    sink = await RedisStreamsSink.connect(
        f"redis://127.0.0.1:{proxy.port}/0", stream=f"{prefix}:{{topic}}", timeout=2.0
    )

    async def read_back() -> list[Stored]:
        out = []
        for _, fields in await admin.xrange(f"{prefix}:order"):
            attrs, data = read_entry(fields)
            out.append(Stored(attrs, orjson.loads(data)))
        return out

    async def stored_count() -> int:
        return int(await admin.xlen(f"{prefix}:order"))

    async def make_unavailable() -> None:
        await proxy.cut()

    def refused_event() -> Event:
        return make_event("OrderPlaced", {"n": 0}, topic="wrongtype")

    try:
        yield Harness(
            sink,
            RedisStreamsSink.features,
            read_back,
            stored_count,
            make_unavailable,
            refused_event,
        )
    finally:
        await sink.close()
        await proxy.cut()
        keys = [k async for k in admin.scan_iter(match=f"*{prefix}*", count=1000)]
        if keys:
            await admin.delete(*keys)
        await admin.aclose()


async def sqs_harness(endpoint: str, fifo: bool) -> AsyncGenerator[Harness, None]:
    """A fresh queue on moto's server (the stand-in for Amazon SQS) whose MaximumMessageSize
    is MAX_MSG_SIZE, so a larger event is refused; the sink reaches moto through a proxy the
    test can cut. ``fifo``: a ``.fifo`` queue (group and de-duplication ids).

    moto's SendMessage and ReceiveMessage take time in proportion to the messages the queue
    holds, so the large batch is 500 events here (50 SendMessageBatch calls)."""
    proxy = TcpProxy("127.0.0.1", int(endpoint.rsplit(":", 1)[1]))
    await proxy.start()
    async with sqs_client(endpoint) as admin:
        queue = await Queue.create(
            admin, "contract", fifo=fifo, MaximumMessageSize=str(MAX_MSG_SIZE)
        )
        sink = await SqsSink.connect(
            queue.name,
            endpoint_url=f"http://127.0.0.1:{proxy.port}",
            region=REGION,
            max_attempts=1,
            timeout=30.0,  # moto on a busy machine, not SQS, needs it
            **CREDENTIALS,
        )

        async def read_back() -> list[Stored]:
            out = []
            for message in await queue.drain():
                attrs = sqs_attributes(message)
                if fifo:
                    assert message["Attributes"]["MessageDeduplicationId"] == attrs["id"]
                out.append(Stored(attrs, orjson.loads(message["Body"])))
            return out

        async def stored_count() -> int:
            return len(await queue.drain())

        async def make_unavailable() -> None:
            await proxy.cut()

        def refused_event() -> Event:
            return make_event("OrderPlaced", {"pad": "x" * (MAX_MSG_SIZE + 100)}, topic="order")

        try:
            yield Harness(
                sink,
                sink.features,
                read_back,
                stored_count,
                make_unavailable,
                refused_event,
                large_batch=200,  # 20 calls of 10, two rounds in flight; moto slows as it fills
            )
        finally:
            await sink.close()
            await proxy.cut()
            await queue.delete()


async def pubsub_harness(emulator: str) -> AsyncGenerator[Harness, None]:
    """A fresh topic ``c<token>-<topic>`` on the Pub/Sub emulator with one subscription
    (message ordering on) that the test pulls from; the sink reaches the emulator through a
    proxy the test can cut. Pub/Sub does not de-duplicate: consumers do, by ``ce-id``."""
    topic = Topic(emulator, name=f"c{uuid.uuid4().hex[:12]}-order").create()
    proxy = TcpProxy("127.0.0.1", int(emulator.rsplit(":", 1)[1]))
    await proxy.start()
    sink = await PubSubSink.connect(
        project=PUBSUB_PROJECT,
        topic=topic.name.replace("-order", "-{topic}"),
        emulator_host=f"127.0.0.1:{proxy.port}",
        max_message_bytes=MAX_MSG_SIZE,
        timeout=30.0,  # the emulator is one JVM: on a loaded machine 1000 messages take a while
    )
    seen: list[Stored] = []

    def drain() -> list[Stored]:
        for message in topic.pull_all(quiet=0.5):
            attrs = pubsub_attributes(message["attributes"])
            assert message.get("orderingKey", "") == attrs.get("partitionkey", "")
            seen.append(Stored(attrs, orjson.loads(message["data"])))
        return seen

    async def read_back() -> list[Stored]:
        return list(drain())

    async def stored_count() -> int:
        return len(drain())

    async def make_unavailable() -> None:
        await proxy.cut()

    def refused_event() -> Event:
        # Over max_message_bytes: refused before sending (Pub/Sub refuses over 10 MB).
        return make_event("OrderPlaced", {"pad": "x" * (MAX_MSG_SIZE + 100)}, topic="order")

    try:
        yield Harness(
            sink, PubSubSink.features, read_back, stored_count, make_unavailable, refused_event
        )
    finally:
        await sink.close()
        await proxy.cut()
        topic.delete()


async def http_harness() -> AsyncGenerator[Harness, None]:
    """A real receiver on loopback (uvicorn); its requests are read back with the official
    CloudEvents SDK (binary content mode). It answers 422 to events of type ``Refused``;
    stopping it makes the target unreachable."""
    from cloudevents.core.bindings.http import HTTPMessage, from_http_event

    from tether.net import SsrfPolicy

    def respond(request: Received) -> Answer:
        refused = request.headers.get("ce-type") == "Refused"
        return Answer(422, body=b"refused by test") if refused else Answer()

    receiver = Receiver(respond)
    await receiver.start()
    sink = await HttpSink.connect(
        f"{receiver.url}/hooks/orders", policy=SsrfPolicy(allow=["127.0.0.1"])
    )

    async def read_back() -> list[Stored]:
        out = []
        for request in receiver.requests:
            event = from_http_event(HTTPMessage(request.headers, request.body))
            attrs = {
                k: v.isoformat() if k == "time" else str(v)
                for k, v in event.get_attributes().items()
            }
            assert request.headers["x-idempotency-key"] == attrs["id"]
            out.append(Stored(attrs, event.get_data()))
        return out

    async def stored_count() -> int:
        return len(receiver.requests)

    async def make_unavailable() -> None:
        await receiver.stop()

    def refused_event() -> Event:
        return make_event("Refused", {"n": 0}, topic="order")

    try:
        yield Harness(
            sink,
            HttpSink.features,
            read_back,
            stored_count,
            make_unavailable,
            refused_event,
            large_batch=100,  # one request each, 16 in flight: HTTP costs more per event than a broker
        )
    finally:
        await sink.close()
        await receiver.stop()


async def webhooks_harness(dsn: str) -> AsyncGenerator[Harness, None]:
    """The ``webhooks`` sink through ``publish`` (no relay transaction to lend), fanning out to
    one endpoint of tenant ``acme`` that takes every type; read back from the deliveries table,
    as the body receivers get. That body is Standard Webhooks JSON, not a CloudEvent: it keeps
    the id, type, time and tenant of the envelope. Events over its 8 KiB limit are refused;
    closing its pool makes it unavailable."""
    import asyncpg

    from tether.net import SsrfPolicy
    from tether.webhooks.model import EndpointSettings
    from tether.webhooks.secret_box import SecretBox
    from tether.webhooks.sink import WebhooksSink
    from tether.webhooks.store import EndpointStore

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    store = EndpointStore(
        pool, ssrf=SsrfPolicy(allow=["127.0.0.1"]), box=SecretBox(SecretBox.generate_key())
    )
    await store.create("acme", EndpointSettings("http://127.0.0.1:9/hook"))
    sink = WebhooksSink(pool, max_payload_bytes=MAX_MSG_SIZE)
    rows: list[Any] = []

    async def read_back() -> list[Stored]:
        if not pool.is_closing():
            rows[:] = await pool.fetch("SELECT payload FROM tether_webhook_deliveries ORDER BY seq")
        out = []
        for row in rows:
            body = orjson.loads(row["payload"])
            attrs = {"id": body["id"], "type": body["type"], "time": body["timestamp"]}
            out.append(Stored(attrs | {"tenantid": body["tenant"]}, body["data"]))
        return out

    async def stored_count() -> int:
        return len(await read_back())

    async def make_unavailable() -> None:
        await read_back()
        await pool.close()

    def refused_event() -> Event:
        return make_event("OrderPlaced", {"pad": "x" * MAX_MSG_SIZE}, tenant_id="acme")

    try:
        yield Harness(
            sink,
            WebhooksSink.features,
            read_back,
            stored_count,
            make_unavailable,
            refused_event,
            envelope=("id", "type", "time", "tenantid"),
        )
    finally:
        await sink.close()
        await pool.close()


FEATURES = {
    "memory": MemorySink().features,
    "log": LogSink.features,
    "jetstream": JetStreamSink.features,
    "jetstream-own-client": JetStreamSink.features,
    "rabbitmq": RabbitMQSink.features,
    "rabbitmq-public-api": RabbitMQSink.features,
    "redis": RedisStreamsSink.features,
    "pubsub": PubSubSink.features,
    "sqs": STANDARD_FEATURES,
    "sqs-fifo": FIFO_FEATURES,
    "http": HttpSink.features,
    "webhooks": SinkFeatures(
        dedups_by_id=True, durable=True, can_be_unavailable=True, fails_per_event=True
    ),
}
MARKS = {
    "jetstream": [pytest.mark.nats],
    "jetstream-own-client": [pytest.mark.nats],
    "rabbitmq": [pytest.mark.rabbitmq],
    "rabbitmq-public-api": [pytest.mark.rabbitmq],
    "redis": [pytest.mark.redis],
}


def adapters(*required: str) -> pytest.MarkDecorator:
    """Run the case on every adapter whose features include all of ``required``."""
    names = [n for n, f in FEATURES.items() if all(getattr(f, r) for r in required)]
    params = [pytest.param(n, marks=MARKS.get(n, []), id=n) for n in names]
    return pytest.mark.parametrize("harness", params, indirect=True)


@pytest.fixture
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "memory":
        gen = memory_harness()
    elif request.param == "log":
        gen = log_harness()
    elif request.param.startswith("rabbitmq"):
        raw = request.param == "rabbitmq"
        gen = rabbitmq_harness(request.getfixturevalue("amqp_url"), raw=raw)
    elif request.param.startswith("sqs"):
        gen = sqs_harness(request.getfixturevalue("sqs_endpoint"), request.param == "sqs-fifo")
    elif request.param == "pubsub":
        gen = pubsub_harness(request.getfixturevalue("pubsub_emulator"))
    elif request.param == "redis":
        gen = redis_harness(request.getfixturevalue("redis_url"))
    elif request.param == "http":
        gen = http_harness()
    elif request.param == "webhooks":
        gen = webhooks_harness(request.getfixturevalue("pg_dsn"))
    else:
        own = request.param == "jetstream"
        gen = jetstream_harness(request.getfixturevalue("nats_url"), own=own)
    h = await anext(gen)
    assert h.features == FEATURES[request.param]
    try:
        yield h
    finally:
        await gen.aclose()


# -- the contract -----------------------------------------------------------------------------


@adapters()
async def test_one_ok_outcome_per_event_in_order(harness: Harness) -> None:
    batch = events(20)
    outcomes = await harness.sink.publish(batch)
    assert len(outcomes) == len(batch)
    assert all(o.ok and o.error is None for o in outcomes)
    assert await harness.stored_count() == 20


@adapters()
async def test_empty_batch_gives_no_outcomes(harness: Harness) -> None:
    assert list(await harness.sink.publish([])) == []


@adapters()
async def test_ids_and_payloads_round_trip(harness: Harness) -> None:
    batch = events(5)
    await harness.sink.publish(batch)
    stored = await harness.read_back()
    assert sorted(s.attrs["id"] for s in stored) == sorted(str(e.id) for e in batch)
    by_id = {s.attrs["id"]: s for s in stored}
    for event in batch:
        assert by_id[str(event.id)].payload == event.payload


@adapters()
async def test_envelope_travels_with_the_event(harness: Harness) -> None:
    event = an_event(
        1,
        causation_id="cause-1",
        user_id="Zoë-7",  # non-ASCII header value
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        version=3,
    )
    await harness.sink.publish([event])
    [stored] = await harness.read_back()
    if harness.envelope is not None:  # a format that keeps part of the envelope keeps it whole
        attrs = event.cloudevent_attributes()
        assert stored.attrs == {k: attrs[k] for k in harness.envelope}
        return
    assert stored.attrs == event.cloudevent_attributes()
    for required in ("id", "type", "source", "specversion", "time", "tenantid"):
        assert required in stored.attrs


@adapters()
async def test_republishing_an_id_is_safe(harness: Harness) -> None:
    batch = events(10)
    first = await harness.sink.publish(batch)
    again = await harness.sink.publish(batch[:5])
    assert all(o.ok for o in [*first, *again])
    stored = await harness.stored_count()
    if harness.features.dedups_by_id:
        assert stored == 10
    else:
        assert stored in (10, 15)  # at-least-once: a repeat may be delivered again


@adapters("fails_per_event")
async def test_one_refused_event_does_not_fail_the_others(harness: Harness) -> None:
    assert harness.refused_event is not None
    batch = events(6)
    batch.insert(3, harness.refused_event())
    outcomes = await harness.sink.publish(batch)
    assert [o.ok for o in outcomes] == [True, True, True, False, True, True, True]
    assert outcomes[3].error
    assert outcomes[3].retryable is False
    assert await harness.stored_count() == 6


@adapters("can_be_unavailable")
async def test_unavailable_target_raises(harness: Harness) -> None:
    assert all(o.ok for o in await harness.sink.publish(events(2)))
    await harness.make_unavailable()
    with pytest.raises(SinkUnavailableError):
        await harness.sink.publish(events(3))


@adapters()
async def test_publish_after_close_raises(harness: Harness) -> None:
    await harness.sink.close()
    with pytest.raises(SinkError):
        await harness.sink.publish(events(1))
    await harness.sink.close()  # closing twice is harmless


@adapters("durable")
async def test_durable_target_keeps_events_after_the_sink_closes(harness: Harness) -> None:
    batch = events(4)
    await harness.sink.publish(batch)
    await harness.sink.close()
    assert {s.attrs["id"] for s in await harness.read_back()} == {str(e.id) for e in batch}


@pytest.mark.slow
@adapters()
async def test_large_batch(harness: Harness) -> None:
    n = harness.large_batch
    batch = events(n)
    outcomes = await harness.sink.publish(batch)
    assert len(outcomes) == n
    failed = [o.error for o in outcomes if not o.ok]
    assert not failed, f"{len(failed)} failed, first: {failed[0]}"
    assert await harness.stored_count() == n


@adapters()
async def test_sink_satisfies_the_port(harness: Harness) -> None:
    assert isinstance(harness.sink, Sink)
    assert harness.sink.name
