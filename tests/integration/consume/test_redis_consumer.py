"""The Redis Streams consumer against the real server: what the contract cannot say generically.

The retry set and its due times, delivery counts as the pending entry list keeps them, dead
consumers' entries taken over (but not the ones waiting for a retry), trimmed entries, the
dead-letter copy field by field, a connection cut under a running consumer, and a PostgreSQL
outbox relay feeding a consumer end to end.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.sinks.tcp_proxy import TcpProxy
from tests.support.consumers import Handler, failure, handled, orders, take, wait_for
from tether.consume import Consumer, Delivery, RedeliveryPolicy, deadletter
from tether.consume.redis_streams import RedisStreamsSource, dead_letter_box, retry_key
from tether.core.errors import BrokerUnavailableError, ConfigError
from tether.outbox import add_event
from tether.outbox.inbox import Inbox
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.redis_streams import RedisStreamsSink

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

GROUP = "billing"


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"consume{uuid.uuid4().hex[:12]}"


@pytest.fixture
def stream(prefix: str) -> str:
    return f"{prefix}:order"


@pytest.fixture(autouse=True)
async def _cleanup(admin: aioredis.Redis, prefix: str) -> AsyncIterator[None]:
    yield
    keys = [k async for k in admin.scan_iter(match=f"*{prefix}*", count=1000)]
    if keys:
        await admin.delete(*keys)


@pytest.fixture
async def sink(redis_url: str, prefix: str) -> AsyncIterator[RedisStreamsSink]:
    sink = await RedisStreamsSink.connect(redis_url, stream=f"{prefix}:{{topic}}")
    yield sink
    await sink.close()


async def source(url: str, stream: str, **kw: Any) -> RedisStreamsSource:
    return await RedisStreamsSource.connect(url, stream=stream, group=GROUP, **kw)


async def pending(admin: aioredis.Redis, stream: str) -> list[dict[str, Any]]:
    return list(await admin.xpending_range(stream, GROUP, "-", "+", 100))


async def test_a_retry_waits_in_the_retry_set_then_comes_back_counted_by_the_broker(
    redis_url: str, admin: aioredis.Redis, sink: RedisStreamsSink, stream: str
) -> None:
    await sink.publish(orders(1))
    src = await source(redis_url, stream)
    try:
        [first] = await take(src)
        assert first.deliveries == 1
        await src.retry_later(first, 0.8)
        [(member, due)] = await admin.zrange(retry_key(stream, GROUP), 0, -1, withscores=True)
        server_ms = (await admin.time())[0] * 1000
        assert member == first.handle.id  # type: ignore[attr-defined]
        assert 0 < due - server_ms <= 1800  # the server's clock, not this machine's
        started = time.monotonic()
        # One receive with a long wait returns when the retry is due, not after the wait.
        again = await src.receive(10, 5.0)
        while not again:
            again = await src.receive(10, 5.0)
        elapsed = time.monotonic() - started
        assert 0.8 * 0.9 <= elapsed < 3.0
        [second] = again
        assert second.deliveries == 2
        assert second.event_id == first.event_id
        [entry] = await pending(admin, stream)
        assert entry["times_delivered"] == 2
        assert await admin.zcard(retry_key(stream, GROUP)) == 0
        await src.ack(second)
        assert await pending(admin, stream) == []
    finally:
        await src.close()


async def test_a_dead_consumers_entries_are_taken_over_but_not_a_retry_due_later(
    redis_url: str, admin: aioredis.Redis, sink: RedisStreamsSink, stream: str
) -> None:
    await sink.publish(orders(2))
    crashed = await source(redis_url, stream, claim_idle=0.3)
    survivor = await source(redis_url, stream, claim_idle=0.3)
    try:
        one, two = await take(crashed, 2)
        await crashed.retry_later(two, 2.5)  # then the process "dies" holding both
        await asyncio.sleep(0.6)
        [rescued] = await take(survivor)
        assert rescued.event_id == one.event_id
        assert rescued.deliveries == 2
        await survivor.ack(rescued)
        # The retry is pending far longer than claim_idle, yet it waits for its due time: the
        # JUSTID claim moved it without counting a delivery.
        await asyncio.sleep(0.6)
        assert await survivor.receive(10, 0.1) == []
        [entry] = await pending(admin, stream)
        assert entry["times_delivered"] == 1
        [due] = await take(survivor, limit=5)
        assert (due.event_id, due.deliveries) == (two.event_id, 2)
        await survivor.ack(due)
        assert await pending(admin, stream) == []
    finally:
        await survivor.close()
        await crashed.close()


async def test_entries_trimmed_away_are_acked_and_forgotten(
    redis_url: str, admin: aioredis.Redis, sink: RedisStreamsSink, stream: str
) -> None:
    await sink.publish(orders(2))
    src = await source(redis_url, stream, claim_idle=0.2)
    try:
        waiting, idle = await take(src, 2)
        await src.retry_later(waiting, 0.1)
        await admin.xtrim(stream, maxlen=0)
        await asyncio.sleep(0.4)
        assert await src.receive(10, 0.3) == []
        assert await src.receive(10, 0.3) == []
        assert await pending(admin, stream) == []
        assert await admin.zcard(retry_key(stream, GROUP)) == 0
        assert idle.event_id  # it was pending, unsettled, when trimmed
    finally:
        await src.close()


async def test_the_dead_letter_copy_keeps_every_field_and_replay_ignores_the_dedup_key(
    redis_url: str, admin: aioredis.Redis, sink: RedisStreamsSink, stream: str
) -> None:
    [event] = orders(1, tenant_id="acme")
    await sink.publish([event])
    await admin.xadd(stream, {"id": "x", "note": "kept", "data": b"\xff\x00raw"})
    src = await source(redis_url, stream)
    box = await dead_letter_box(redis_url, stream, GROUP)
    try:
        delivered = await take(src, 2)
        [(_, original)] = await admin.xrange(stream, count=1)
        for delivery in delivered:
            await src.retry_later(delivery, 5)
            await src.dead_letter(delivery, failure())
        assert await pending(admin, stream) == []
        assert await admin.zcard(retry_key(stream, GROUP)) == 0
        copies = await admin.xrange(f"{stream}:dlq")
        assert len(copies) == 2
        first = copies[0][1]
        for name, value in original.items():
            assert first[name] == value
        assert first[b"tether-dlq-kind"] == b"handler"
        assert first[b"tether-dlq-deliveries"] == b"3"
        assert first[b"tether-dlq-origin"] == stream.encode()
        raw = copies[1][1]
        assert raw[b"note"] == b"kept" and raw[b"data"] == b"\xff\x00raw"
        letters = await box.list()
        assert next((d.event_id, d.type, d.kind) for d in letters) == (
            str(event.id),
            "OrderPlaced",
            "handler",
        )
        # The sink's de-dup key for this event is still there: a replay is a plain XADD.
        assert await admin.exists(f"{{{stream}}}:dedup:{event.id}")
        assert await box.replay() == 2
        assert await box.list() == []
        back = await take(src, 2)
        assert {d.event_id for d in back} == {str(event.id), "x"}
        assert all(d.deliveries == 1 for d in back)
        assert all(not k.startswith("tether-dlq-") for d in back for k in d.attributes)
        again = next(d for d in back if d.event_id == str(event.id))
        assert again.data == event.data
        # Dead-lettered a second time, it carries one failure record, the new one.
        await src.dead_letter(again, failure(1))
        [(_, fields)] = await admin.xrange(f"{stream}:dlq")
        names = [k for k in fields if k.startswith(b"tether-dlq-")]
        assert len(names) == len(deadletter.NAMES)
        assert fields[b"tether-dlq-deliveries"] == b"1"
    finally:
        await src.close()
        await box.close()


async def test_the_dead_letter_stream_is_trimmed(
    redis_url: str, admin: aioredis.Redis, sink: RedisStreamsSink, stream: str
) -> None:
    await sink.publish(orders(300))
    src = await source(redis_url, stream, dead_letter_maxlen=10)
    try:
        for delivery in await take(src, 300):
            await src.dead_letter(delivery, failure())
        # Approximate trimming keeps whole radix-tree nodes (100 entries by default).
        assert 10 <= await admin.xlen(f"{stream}:dlq") <= 200
    finally:
        await src.close()


async def test_replay_and_dead_letter_refuse_what_they_cannot_use(
    redis_url: str, admin: aioredis.Redis, stream: str
) -> None:
    box = await dead_letter_box(redis_url, stream, GROUP)
    try:
        with pytest.raises(ConfigError, match="not a stream entry id"):
            await box.replay(["12; DEL x"])
        assert await box.replay(["1-0"]) == 0  # gone already: nothing replayed
    finally:
        await box.close()
    with pytest.raises(ConfigError, match="consumer group 'a b'"):
        await dead_letter_box(redis_url, stream, "a b")


async def test_settings_and_keys_are_checked_at_connect(
    redis_url: str, admin: aioredis.Redis, stream: str
) -> None:
    with pytest.raises(ConfigError, match="consumer group"):
        await RedisStreamsSource.connect(redis_url, stream=stream, group="")
    with pytest.raises(ConfigError, match="start must be"):
        await RedisStreamsSource.connect(redis_url, stream=stream, group="g", start="1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="claim_idle"):
        await RedisStreamsSource.connect(redis_url, stream=stream, group="g", claim_idle=0)
    with pytest.raises(ConfigError, match="spaces"):
        await RedisStreamsSource.connect(redis_url, stream="a b", group="g")
    with pytest.raises(ConfigError, match="must differ"):
        await RedisStreamsSource.connect(
            redis_url, stream=stream, group="g", dead_letter_stream=stream
        )
    await admin.set(stream, "not a stream")
    with pytest.raises(ConfigError, match=r"WRONGTYPE|wrong kind"):
        await RedisStreamsSource.connect(redis_url, stream=stream, group="g")
    await admin.delete(stream)
    await admin.set(f"{stream}:dlq", "not a stream")
    with pytest.raises(ConfigError, match="holds a string"):
        await RedisStreamsSource.connect(redis_url, stream=stream, group="g")
    with pytest.raises(BrokerUnavailableError, match="cannot reach Redis"):
        await RedisStreamsSource.connect("redis://127.0.0.1:1/0", stream=stream, group="g")


async def test_start_dollar_skips_what_was_there_and_close_leaves_no_consumer(
    redis_url: str, admin: aioredis.Redis, sink: RedisStreamsSink, stream: str
) -> None:
    await sink.publish(orders(3))
    src = await source(redis_url, stream, start="$")
    try:
        assert await src.receive(10, 0.2) == []
        await sink.publish(orders(1))
        [new] = await take(src)
        await src.ack(new)
    finally:
        await src.close()
    assert await admin.xinfo_consumers(stream, GROUP) == []


async def test_a_hung_server_makes_receive_unavailable_within_its_timeout(
    redis_url: str, stream: str
) -> None:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    src = await source(f"redis://127.0.0.1:{proxy.port}/0", stream, timeout=0.5)
    try:
        proxy.swallow_replies = True
        started = time.monotonic()
        with pytest.raises(BrokerUnavailableError, match="did not answer"):
            await src.receive(10, 0.2)
        assert time.monotonic() - started < 3
        proxy.swallow_replies = False
        assert await src.receive(10, 0.1) == []  # a fresh connection, no stale replies
    finally:
        await src.close()
        await proxy.cut()


# -- with the runner and PostgreSQL -------------------------------------------------------------


async def test_a_connection_cut_pauses_the_consumer_and_it_resumes_losing_nothing(
    redis_url: str,
    admin: aioredis.Redis,
    sink: RedisStreamsSink,
    stream: str,
    engine: AsyncEngine,
) -> None:
    events = orders(300)
    await sink.publish(events)
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    src = await source(f"redis://127.0.0.1:{proxy.port}/0", stream, claim_idle=1.0, timeout=1.0)
    handler = Handler()
    consumer = Consumer(
        src, handler, transaction=engine.begin, inbox=Inbox(GROUP), batch_size=20, wait=0.2
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(consumer.run(stop))

    async def some() -> bool:
        return len(handler.calls) >= 60

    async def all_of_them() -> bool:
        # An ack lost in the cut leaves its entry pending until claim_idle hands it out again
        # and the inbox turns it into a plain ack: wait for that too.
        return await handled(engine) == len(events) and await pending(admin, stream) == []

    try:
        await wait_for(some, "the first events", 30)
        await proxy.cut()
        with pytest.raises(BrokerUnavailableError):
            await src.receive(1, 0.1)  # what the running consumer meets too: it pauses
        await asyncio.sleep(1.0)
        assert not runner.done()
        await proxy.start()
        await wait_for(all_of_them, "every event after the cut", 60)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 20)
        await src.close()
        await proxy.cut()
    assert set(handler.calls) == {str(e.id) for e in events}
    # A verdict lost in the cut hands the message out again; the inbox keeps it to one run.
    assert await handled(engine) == len(events)
    assert await pending(admin, stream) == []


async def test_an_outbox_relay_feeds_a_consumer_each_event_handled_once(
    pg_dsn: str, redis_url: str, admin: aioredis.Redis, prefix: str, engine: AsyncEngine
) -> None:
    total = 500
    conn = await asyncpg.connect(pg_dsn)
    try:
        async with conn.transaction():
            for i in range(total):
                await add_event(conn, "OrderPlaced", {"n": i}, topic="order", aggregate_id=i % 7)
    finally:
        await conn.close()
    sink = await RedisStreamsSink.connect(redis_url, stream=f"{prefix}:{{topic}}")
    store = await PostgresOutboxStore.connect(pg_dsn, connections=2)
    relay = Relay(store, [sink], config=RelayConfig(batch_size=100))
    src = await source(redis_url, f"{prefix}:order")
    handler = Handler(fail_first=lambda n: n % 25 == 0)
    policy = RedeliveryPolicy(backoff=(0.2,), max_deliveries=3, jitter=0)
    consumer = Consumer(
        src, handler, transaction=engine.begin, inbox=Inbox(GROUP), policy=policy, wait=0.2
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
        await src.close()
        await store.close()
        await sink.close()
    failed_once = [n for n in range(total) if n % 25 == 0]
    assert len(handler.calls) == total
    assert sorted(handler.calls.values()).count(2) == len(failed_once)
    assert await pending(admin, f"{prefix}:order") == []
    assert await admin.xlen(f"{prefix}:order:dlq") == 0


async def test_a_group_deleted_under_the_consumer_is_created_again(
    redis_url: str, admin: aioredis.Redis, sink: RedisStreamsSink, stream: str
) -> None:
    [event] = orders(1)
    await sink.publish([event])
    src = await source(redis_url, stream)
    try:
        [delivery] = await take(src)
        await admin.xgroup_destroy(stream, GROUP)
        await src.dead_letter(delivery, failure())  # nothing left to settle: no error
        await src.ack(delivery)
        assert await src.receive(10, 0.1) == []  # creates the group again (from the start)
        [again] = await take(src)
        assert again.event_id == str(event.id)
        await src.ack(again)
    finally:
        await src.close()


async def test_a_delivery_from_another_source_is_refused(redis_url: str, stream: str) -> None:
    src = await source(redis_url, stream)
    try:
        stranger = Delivery({}, b"{}", 1, "elsewhere", handle=42)
        with pytest.raises(TypeError, match="not come from a Redis Streams source"):
            await src.ack(stranger)
    finally:
        await src.close()
