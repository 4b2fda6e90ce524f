"""The Pub/Sub sink against the Pub/Sub emulator (started for the session, see
``tests/support/pubsub_emulator.py``): ordering keys, attributes, refusals, an unreachable
endpoint, the plugin from a config file, and a relay draining PostgreSQL into a topic."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import orjson
import pytest

from tests.integration.sinks.tcp_proxy import TcpProxy
from tests.support.pubsub_emulator import PROJECT, Topic, pubsub_emulator_fixture  # noqa: F401
from tether.commands.relay import open_sinks
from tether.config import load_settings
from tether.core.envelope import make_event
from tether.core.errors import ConfigError, SinkUnavailableError
from tether.outbox import add_event
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.pubsub import PubSubSink, cloudevent_attributes, message_attributes

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def topic(pubsub_emulator: str) -> Iterator[Topic]:
    created = Topic(pubsub_emulator).create()
    try:
        yield created
    finally:
        created.delete()


@pytest.fixture
async def sink(pubsub_emulator: str, topic: Topic) -> AsyncIterator[PubSubSink]:
    # A generous timeout: the emulator is one JVM, slow on a loaded machine, and a timed-out
    # request that was stored after all would be re-published (a duplicate the tests count).
    opened = await PubSubSink.connect(
        project=PROJECT, topic=topic.name, emulator_host=pubsub_emulator, timeout=30.0
    )
    try:
        yield opened
    finally:
        await opened.close()


async def test_ordering_keys_are_set_and_each_key_arrives_in_order(
    sink: PubSubSink, topic: Topic
) -> None:
    keys = [f"order:{k}" for k in range(4)]
    sent: dict[str, list[str]] = {k: [] for k in keys}
    for n in range(40):  # one event per key per call, as the relay's waves send them
        batch = [
            make_event("OrderUpdated", {"n": n}, aggregate_type="order", aggregate_id=str(k))
            for k in range(4)
        ]
        assert all(o.ok for o in await sink.publish(batch))
        for event in batch:
            assert event.partition_key is not None
            sent[event.partition_key].append(str(event.id))
    unkeyed = make_event("Ping", {"n": 0}, topic="order")
    assert (await sink.publish([unkeyed]))[0].ok
    messages = topic.pull_all(expected=4 * 40 + 1)
    got: dict[str, list[str]] = {k: [] for k in keys}
    for message in messages:
        key = message.get("orderingKey", "")
        if message["attributes"]["ce-id"] == str(unkeyed.id):
            assert key == ""  # no partition key, no ordering key
            continue
        assert key == message["attributes"]["ce-partitionkey"]
        got[key].append(message["attributes"]["ce-id"])
    assert got == sent


async def test_the_ordering_key_holds_back_a_keys_next_message_until_the_first_is_acked(
    sink: PubSubSink, topic: Topic
) -> None:
    """What makes the order hold for consumers: with ordering on, the emulator (like Pub/Sub)
    delivers a key's next message only once the one before it is acknowledged."""
    first, second = (
        make_event("OrderUpdated", {"n": n}, aggregate_type="order", aggregate_id="7")
        for n in range(2)
    )
    for event in (first, second):  # one call after the other, as the relay does for a key
        assert (await sink.publish([event]))[0].ok
    path = f"subscriptions/{topic.subscription}:pull"
    one, many = ({"maxMessages": n, "returnImmediately": True} for n in (1, 10))
    [held] = topic._call("POST", path, one)["receivedMessages"]
    assert held["message"]["attributes"]["ce-id"] == str(first.id)
    assert topic._call("POST", path, many).get("receivedMessages", []) == []  # held back
    topic._call(
        "POST", f"subscriptions/{topic.subscription}:acknowledge", {"ackIds": [held["ackId"]]}
    )
    [after] = topic.pull_all(expected=1)
    assert after["attributes"]["ce-id"] == str(second.id)


async def test_attributes_and_data_round_trip(sink: PubSubSink, topic: Topic) -> None:
    event = make_event(
        "OrderPlaced",
        {"total": 12.5, "note": "crème brûlée ✓"},
        aggregate_type="order",
        aggregate_id="o-1",
        tenant_id="acme",
        user_id="Zoë-7",
        correlation_id="corr-1",
        causation_id="cause-1",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        version=3,
    )
    assert (await sink.publish([event]))[0].ok
    [message] = topic.pull_all(expected=1)
    assert message["data"] == event.data  # the payload's JSON bytes, untouched
    attrs = message["attributes"]
    assert attrs == message_attributes(event)
    assert attrs["content-type"] == "application/json"
    assert attrs["ce-id"] == str(event.id) and attrs["ce-specversion"] == "1.0"
    assert cloudevent_attributes(attrs) == event.cloudevent_attributes()
    assert message["orderingKey"] == "order:o-1"


async def test_an_oversized_event_fails_for_good_and_the_rest_pass(
    sink: PubSubSink, topic: Topic
) -> None:
    # The emulator stores messages over 10 MB; Pub/Sub refuses them: the sink checks first.
    big = make_event("Blob", {"pad": "x" * 10_000_001}, topic="order", max_payload_bytes=11_000_000)
    small = [make_event("OrderPlaced", {"n": n}, topic="order") for n in range(3)]
    outcomes = await sink.publish([small[0], big, small[1], small[2]])
    assert [o.ok for o in outcomes] == [True, False, True, True]
    assert outcomes[1].retryable is False
    assert (
        f"message of {len(big.data) + sum(len(k) + len(v) for k, v in message_attributes(big).items())} bytes"
        in (outcomes[1].error or "")
    )
    assert "10 MB" in (outcomes[1].error or "")
    assert len(topic.pull_all(expected=3)) == 3


async def test_a_missing_topic_fails_retryably_naming_it(pubsub_emulator: str) -> None:
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    sink = await PubSubSink.connect(project=PROJECT, topic=missing, emulator_host=pubsub_emulator)
    try:
        [outcome] = await sink.publish([make_event("OrderPlaced", {"n": 1}, topic="order")])
    finally:
        await sink.close()
    assert not outcome.ok and outcome.retryable
    assert f"projects/{PROJECT}/topics/{missing}" in (outcome.error or "")
    assert "HTTP 404" in (outcome.error or "") and "create the topic" in (outcome.error or "")


async def test_a_topic_that_is_no_topic_id_fails_that_event_for_good(
    pubsub_emulator: str,
    topic: Topic,
) -> None:
    sink = await PubSubSink.connect(project=PROJECT, topic="{topic}", emulator_host=pubsub_emulator)
    try:
        bad = make_event("OrderPlaced", {"n": 1}, topic="billing/invoice")  # "/" is not allowed
        good = make_event("OrderPlaced", {"n": 2}, topic=topic.name)
        outcomes = await sink.publish([bad, good])
    finally:
        await sink.close()
    assert [o.ok for o in outcomes] == [False, True]
    assert outcomes[0].retryable is False and "not a Pub/Sub topic id" in (outcomes[0].error or "")


async def test_unreachable_emulator_defers_the_whole_call(
    pubsub_emulator: str, topic: Topic
) -> None:
    proxy = TcpProxy("127.0.0.1", int(pubsub_emulator.rsplit(":", 1)[1]))
    await proxy.start()
    sink = await PubSubSink.connect(
        project=PROJECT, topic=topic.name, emulator_host=f"127.0.0.1:{proxy.port}", timeout=3.0
    )
    try:
        assert all(o.ok for o in await sink.publish([make_event("A", {"n": 1}, topic="t")]))
        await proxy.cut()
        started = time.monotonic()
        with pytest.raises(SinkUnavailableError, match="cannot reach Pub/Sub"):
            await sink.publish([make_event("A", {"n": n}, topic="t") for n in range(3)])
        assert time.monotonic() - started < 3.0  # refused at once, not a timeout
        await proxy.start()  # back on the same port: the next call goes through
        assert all(o.ok for o in await sink.publish([make_event("A", {"n": 9}, topic="t")]))
    finally:
        await sink.close()
        await proxy.cut()
    assert len(topic.pull_all(expected=2)) == 2


async def test_no_answer_at_all_defers_the_call(pubsub_emulator: str, topic: Topic) -> None:
    proxy = TcpProxy("127.0.0.1", int(pubsub_emulator.rsplit(":", 1)[1]))
    await proxy.start()
    sink = await PubSubSink.connect(
        project=PROJECT, topic=topic.name, emulator_host=f"127.0.0.1:{proxy.port}", timeout=1.0
    )
    try:
        assert (await sink.publish([make_event("A", {"n": 1}, topic="t")]))[0].ok
        proxy.swallow_replies = True  # connected, but Pub/Sub's answers never arrive
        with pytest.raises(SinkUnavailableError, match="answered none of 1 publish request"):
            await sink.publish([make_event("A", {"n": 2}, topic="t")])
    finally:
        await sink.close()
        await proxy.cut()


async def test_a_closed_port_is_unavailable_not_a_failure() -> None:
    sink = await PubSubSink.connect(project=PROJECT, topic="t-x-y", emulator_host="127.0.0.1:1")
    try:
        with pytest.raises(SinkUnavailableError, match="cannot reach Pub/Sub"):
            await sink.publish([make_event("A", {"n": 1}, topic="t")])
    finally:
        await sink.close()


async def test_more_than_a_request_holds_is_split(sink: PubSubSink, topic: Topic) -> None:
    batch = [make_event("OrderPlaced", {"n": n}, topic="order") for n in range(2500)]
    requests_before = sink.stats["requests"]
    outcomes = await sink.publish(batch)
    assert all(o.ok for o in outcomes)
    assert sink.stats["requests"] - requests_before == 3  # 1000 + 1000 + 500
    assert len(topic.pull_all(expected=2500)) == 2500


async def test_the_plugin_opens_from_the_config_file(
    tmp_path: Path,
    pubsub_emulator: str,
    topic: Topic,
) -> None:
    path = tmp_path / "tether.toml"
    path.write_text(
        f'[sinks.pubsub]\nproject = "{PROJECT}"\ntopic = "{topic.name}"\n'
        f'emulator_host = "{pubsub_emulator}"\n'
    )
    [sink] = await open_sinks(load_settings(path, env={}), asyncio.Event(), patient=False) or []
    try:
        assert isinstance(sink, PubSubSink) and sink.name == "pubsub"
        assert (await sink.publish([make_event("OrderPlaced", {"n": 1}, topic="order")]))[0].ok
    finally:
        await sink.close()
    assert len(topic.pull_all(expected=1)) == 1


async def test_connect_refuses_bad_settings_by_name() -> None:
    with pytest.raises(ConfigError, match="not a Google Cloud project id"):
        await PubSubSink.connect(project="P!", emulator_host="127.0.0.1:8085")
    with pytest.raises(ConfigError, match="cannot make a Pub/Sub topic id"):
        await PubSubSink.connect(project=PROJECT, topic="events/{topic}", emulator_host="h:1")
    with pytest.raises(ConfigError, match="not both"):
        await PubSubSink.connect(
            project=PROJECT, emulator_host="h:1", api_root="https://pubsub.googleapis.com/v1"
        )


EVENTS = 2000


@pytest.mark.postgres
async def test_a_relay_drains_postgres_into_pubsub_in_order(
    pg_dsn: str, sink: PubSubSink, topic: Topic
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    sent: dict[str, list[str]] = {}
    try:
        async with conn.transaction():
            for i in range(EVENTS):
                ref = await add_event(
                    conn, "OrderUpdated", {"n": i}, aggregate_type="order", aggregate_id=str(i % 50)
                )
                sent.setdefault(f"order:{i % 50}", []).append(str(ref.id))
        store = await PostgresOutboxStore.connect(pg_dsn, connections=2)
        relay = Relay(
            store, [sink], config=RelayConfig(batch_size=500, concurrency=2, publish_timeout=60.0)
        )
        stop = asyncio.Event()
        started = time.perf_counter()
        runner = asyncio.create_task(relay.run(stop))
        try:
            async with asyncio.timeout(60):
                while await conn.fetchval("SELECT count(*) FROM tether_outbox"):
                    await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            await asyncio.wait_for(runner, 30)
            await store.close()
    finally:
        await conn.close()
    print(
        f"\nrelay drain into the Pub/Sub emulator: {EVENTS} events in {elapsed:.2f}s, "
        f"{EVENTS / elapsed:.0f} events/s (informational)"
    )
    assert relay.stats.published == EVENTS and relay.stats.dead == 0, relay.stats
    messages = await asyncio.to_thread(topic.pull_all, EVENTS)
    got: dict[str, list[str]] = {}
    for message in messages:
        got.setdefault(message["orderingKey"], []).append(message["attributes"]["ce-id"])
        assert orjson.loads(message["data"])["n"] >= 0
    assert got == sent  # every event once, each aggregate's in the order it was added
