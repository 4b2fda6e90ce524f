"""The SQS sink against moto's server, the stand-in for Amazon SQS (``tests/support``).

FIFO group and de-duplication ids as a consumer receives them, a re-published id dropped by a
FIFO queue, sizes (refused before sending, refused by the server, split into calls), queues by
name and URL, errors at connect and when the queue goes away, the plugin opened from a config
file, and a relay draining a PostgreSQL outbox into a queue.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.moto_server import CREDENTIALS, REGION, ROOT, free_port
from tests.support.sqs_admin import Queue, sqs_client
from tether.commands.relay import open_sinks
from tether.config import load_settings
from tether.core.envelope import Event, make_event
from tether.core.errors import ConfigError, SinkUnavailableError
from tether.outbox import add_event
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.sqs import MAX_ENTRIES, SqsSink, cloudevent_attributes, group_id

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def admin(sqs_endpoint: str) -> AsyncIterator[Any]:
    async with sqs_client(sqs_endpoint) as client:
        yield client


async def open_sink(endpoint: str, queue: str, **kw: Any) -> SqsSink:
    return await SqsSink.connect(queue, endpoint_url=endpoint, region=REGION, **CREDENTIALS, **kw)


def order_event(i: int, **kw: Any) -> Event:
    return make_event("OrderPlaced", {"n": i}, aggregate_type="order", aggregate_id=f"o-{i}", **kw)


async def test_fifo_messages_carry_group_and_deduplication_ids(
    sqs_endpoint: str, admin: Any
) -> None:
    queue = await Queue.create(admin, "fifo", fifo=True)
    sink = await open_sink(sqs_endpoint, queue.name)
    batch = [
        order_event(1),
        make_event("A", {}, partition_key="tenant 7 / é"),  # SQS cannot take it as it is
        make_event("B", {}),  # no key, no aggregate: its own group
    ]
    try:
        assert sink.fifo and sink.features.dedups_by_id
        assert all(o.ok for o in await sink.publish(batch))
        received = {cloudevent_attributes(m)["id"]: m for m in await queue.drain()}
        assert set(received) == {str(e.id) for e in batch}
        for event in batch:
            system = received[str(event.id)]["Attributes"]
            assert system["MessageDeduplicationId"] == str(event.id)
            assert system["MessageGroupId"] == group_id(event)
        groups = [received[str(e.id)]["Attributes"]["MessageGroupId"] for e in batch]
        assert groups[0] == "order:o-1"
        assert groups[1].startswith("sha256-")
        assert groups[2] == str(batch[2].id)
    finally:
        await sink.close()
        await queue.delete()


async def test_fifo_queue_drops_a_republished_id(sqs_endpoint: str, admin: Any) -> None:
    queue = await Queue.create(admin, "dedup", fifo=True)
    sink = await open_sink(sqs_endpoint, queue.name)
    batch = [order_event(i) for i in range(3)]
    try:
        assert all(o.ok for o in await sink.publish(batch))
        new = order_event(3)
        again = await sink.publish([*batch, new])  # a relay retrying a cut batch, plus one
        assert all(o.ok for o in again)
        ids = [cloudevent_attributes(m)["id"] for m in await queue.drain()]
        assert sorted(ids) == sorted(str(e.id) for e in [*batch, new])
    finally:
        await sink.close()
        await queue.delete()


async def test_standard_queue_holds_a_republished_id_twice(sqs_endpoint: str, admin: Any) -> None:
    queue = await Queue.create(admin, "standard")
    sink = await open_sink(sqs_endpoint, queue.url)  # by URL: no GetQueueUrl
    event = order_event(1)
    try:
        assert not sink.fifo and not sink.features.dedups_by_id
        await sink.publish([event])
        await sink.publish([event])
        received = await queue.drain()
        assert [cloudevent_attributes(m)["id"] for m in received] == [str(event.id)] * 2
        assert "MessageGroupId" not in received[0]["Attributes"]
    finally:
        await sink.close()
        await queue.delete()


async def test_attributes_layout(sqs_endpoint: str, admin: Any) -> None:
    queue = await Queue.create(admin, "attrs")
    sink = await open_sink(sqs_endpoint, queue.name)
    event = order_event(
        1, tenant_id="acme", traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    )
    try:
        await sink.publish([event])
        [message] = await queue.drain()
        attrs = message["MessageAttributes"]
        assert len(attrs) <= 10  # SQS's limit
        assert {k: v["DataType"] for k, v in attrs.items()} == dict.fromkeys(
            [
                "ce",
                "ce_id",
                "ce_type",
                "ce_source",
                "ce_time",
                "ce_topic",
                "ce_tenantid",
                "ce_traceparent",
            ],
            "String",
        )
        assert attrs["ce_id"]["StringValue"] == str(event.id)
        assert attrs["ce_type"]["StringValue"] == "OrderPlaced"
        assert cloudevent_attributes(message) == event.cloudevent_attributes()
        assert message["Body"] == event.data.decode()
    finally:
        await sink.close()
        await queue.delete()


async def test_an_event_too_large_for_the_queue_fails_alone_naming_its_size(
    sqs_endpoint: str, admin: Any
) -> None:
    queue = await Queue.create(admin, "size", MaximumMessageSize="4096")
    sink = await open_sink(sqs_endpoint, queue.name)
    big = make_event("Big", {"pad": "x" * 5000})
    try:
        assert sink.max_message_bytes == 4096  # read from the queue
        outcomes = await sink.publish([order_event(0), big, order_event(2)])
        assert [o.ok for o in outcomes] == [True, False, True]
        assert outcomes[1].retryable is False
        assert "bytes" in (outcomes[1].error or "") and "4096" in (outcomes[1].error or "")
        assert sink.stats["too_large"] == 1
        assert len(await queue.drain()) == 2
    finally:
        await sink.close()
        await queue.delete()


async def test_a_call_the_server_refuses_whole_is_resent_one_by_one(
    sqs_endpoint: str, admin: Any
) -> None:
    """The sink is told a higher limit than the queue's: moto refuses the whole batch for the
    one large message, the sink sends the ten one at a time and only that one fails."""
    queue = await Queue.create(admin, "isolate", MaximumMessageSize="2048")
    sink = await open_sink(sqs_endpoint, queue.name, max_message_bytes=1024 * 1024)
    batch = [order_event(i) for i in range(9)]
    batch.insert(4, make_event("Big", {"pad": "x" * 3000}))
    try:
        outcomes = await sink.publish(batch)
        assert [o.ok for o in outcomes] == [True] * 4 + [False] + [True] * 5
        assert outcomes[4].retryable is False
        assert "InvalidParameterValue" in (outcomes[4].error or "")
        assert sink.stats["isolated_calls"] == 1
        assert len(await queue.drain()) == 9
    finally:
        await sink.close()
        await queue.delete()


async def test_25_events_go_in_three_calls_and_large_ones_split_by_bytes(
    sqs_endpoint: str, admin: Any
) -> None:
    queue = await Queue.create(admin, "chunks")
    sink = await open_sink(sqs_endpoint, queue.name, max_batch_bytes=64 * 1024)
    try:
        outcomes = await sink.publish([order_event(i) for i in range(25)])
        assert len(outcomes) == 25 and all(o.ok for o in outcomes)
        assert sink.stats["calls"] == 3  # 10 + 10 + 5
        assert len(await queue.drain()) == 25
        large = [make_event("L", {"n": i, "pad": "x" * 20_000}) for i in range(6)]
        outcomes = await sink.publish(large)  # ~21 KB each: 3 fit in 64 KiB
        assert all(o.ok for o in outcomes)
        assert sink.stats["calls"] == 3 + 2
        assert len(await queue.drain()) == 25 + 6
        assert MAX_ENTRIES == 10
    finally:
        await sink.close()
        await queue.delete()


async def test_connect_errors_say_what_to_fix(
    sqs_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    with pytest.raises(ConfigError, match=r"does not exist .* create it or fix the name"):
        await open_sink(sqs_endpoint, f"missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(SinkUnavailableError, match="cannot reach SQS"):
        await open_sink(f"http://127.0.0.1:{free_port()}", "orders", max_attempts=1)
    with pytest.raises(ConfigError, match="region"):
        await SqsSink.connect("orders", endpoint_url=sqs_endpoint, **CREDENTIALS)
    with pytest.raises(ConfigError, match="both access_key_id and secret_access_key"):
        await SqsSink.connect("orders", region=REGION, access_key_id="x")


async def test_a_deleted_queue_defers_the_batch(sqs_endpoint: str, admin: Any) -> None:
    queue = await Queue.create(admin, "gone")
    sink = await open_sink(sqs_endpoint, queue.name)
    try:
        assert (await sink.publish([order_event(0)]))[0].ok
        await queue.delete()
        with pytest.raises(SinkUnavailableError, match="does not exist"):
            await sink.publish([order_event(1)])
    finally:
        await sink.close()


async def test_the_plugin_opens_from_the_config_file(
    tmp_path: Path, sqs_endpoint: str, admin: Any
) -> None:
    queue = await Queue.create(admin, "plugin", fifo=True)
    path = tmp_path / "tether.toml"
    path.write_text(
        f'[sinks.sqs]\nqueue = "{queue.name}"\nendpoint_url = "{sqs_endpoint}"\n'
        f'region = "{REGION}"\naccess_key_id = "testing"\nsecret_access_key = "testing"\n'
        "max_in_flight = 4\n"
    )
    sinks = await open_sinks(load_settings(path, env={}), asyncio.Event(), patient=False)
    assert sinks is not None
    [sink] = sinks
    try:
        assert isinstance(sink, SqsSink) and sink.name == "sqs" and sink.fifo
        assert sink.queue_url == queue.url
        assert (await sink.publish([order_event(0)]))[0].ok
        assert len(await queue.drain()) == 1
    finally:
        await sink.close()
        await queue.delete()


@pytest.mark.postgres
@pytest.mark.timeout(1200)  # the drain itself is bounded below, by the number of events
async def test_a_relay_drains_a_postgres_outbox_into_sqs(
    pg_dsn: str, sqs_endpoint: str, admin: Any
) -> None:
    """Every event once (FIFO de-duplicates a retried batch), in the queue, outbox empty.
    Events/s is printed for information: moto is a slow stand-in (time per message grows
    with the queue), not a measure of SQS. ``SQS_RELAY_EVENTS=2000`` measures a bigger one."""
    events = int(os.environ.get("SQS_RELAY_EVENTS", "300"))
    queue = await Queue.create(admin, "relay", fifo=True)
    conn = await asyncpg.connect(pg_dsn)
    expected: set[str] = set()
    try:
        async with conn.transaction():
            for i in range(events):
                ref = await add_event(
                    conn, "OrderPlaced", {"n": i}, aggregate_type="order", aggregate_id=f"o-{i}"
                )
                expected.add(str(ref.id))
        store = await PostgresOutboxStore.connect(pg_dsn, connections=2)
        sink = await open_sink(sqs_endpoint, queue.name, timeout=30.0)
        relay = Relay(
            store, [sink], config=RelayConfig(batch_size=200, concurrency=2, publish_timeout=60)
        )
        stop = asyncio.Event()
        started = time.perf_counter()
        runner = asyncio.create_task(relay.run(stop))
        try:
            async with asyncio.timeout(60 + events * 0.5):
                while await conn.fetchval("SELECT count(*) FROM tether_outbox"):
                    await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            await asyncio.wait_for(runner, 30)
            await sink.close()
            await store.close()
        print(
            f"relay drained {events} events into moto's SQS in {elapsed:.2f}s "
            f"({events / elapsed:.0f} events/s)"
        )
        assert relay.stats.dead == 0, relay.stats
        assert await queue.count() == events
        received = [cloudevent_attributes(m)["id"] for m in await queue.drain()]
        assert sorted(received) == sorted(expected)
    finally:
        await conn.close()
        await queue.delete()


async def test_docs_example(sqs_endpoint: str, admin: Any) -> None:
    from tests.unit.sinks.test_docs_examples import doc_block

    queue = await Queue.create(admin, "docs", fifo=True)
    to_sqs = doc_block("SqsSink.connect", {'"shop-orders.fifo"': f'"{queue.name}"'})["to_sqs"]
    try:
        [outcome] = await to_sqs([order_event(0)], sqs_endpoint)
        assert outcome.ok
        assert len(await queue.drain()) == 1
    finally:
        await queue.delete()


def test_the_example_runs(sqs_endpoint: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_", "AWS_"))}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sqs_sink.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**env, "SQS_ENDPOINT_URL": sqs_endpoint},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sqs outcomes: [True, True, False] - message of " in result.stdout
    assert "over the queue's maximum message size of 262144 bytes" in result.stdout
    assert "sqs queue holds: ['OrderPlaced']" in result.stdout
