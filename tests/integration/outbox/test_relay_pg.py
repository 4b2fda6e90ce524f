"""The relay against real PostgreSQL: publish, retry, defer, dead-letter, route, order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from tests.integration.outbox.scripted_sink import ScriptedSink
from tether.core.backoff import RetryPolicy
from tether.outbox import add_event
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.routing import Route, Router
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.base import Outcome

FAST_RETRY = RetryPolicy(max_attempts=3, base=timedelta(milliseconds=1), cap=timedelta(milliseconds=2))


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(pg_dsn)
    yield c
    await c.close()


@pytest.fixture
async def store(pg_dsn: str) -> AsyncIterator[PostgresOutboxStore]:
    s = await PostgresOutboxStore.connect(pg_dsn, connections=4)
    yield s
    await s.close()


async def produce(conn: asyncpg.Connection, n: int, **fields: object) -> list[str]:
    ids = []
    async with conn.transaction():
        for i in range(n):
            ref = await add_event(conn, "OrderPlaced", {"n": i}, **fields)  # type: ignore[arg-type]
            ids.append(str(ref.id))
    return ids


async def drain(relay: Relay, rounds: int = 50) -> None:
    for _ in range(rounds):
        if (await relay.run_once()).claimed == 0:
            return
    raise AssertionError("relay did not drain")


async def test_publishes_in_order_and_deletes(conn: asyncpg.Connection, store: PostgresOutboxStore) -> None:
    ids = await produce(conn, 25)
    sink = ScriptedSink()
    relay = Relay(store, [sink])
    report = await relay.run_once()
    assert report.claimed == 25 and report.published == 25
    assert [str(e.id) for e in sink.received] == ids
    assert sink.received[0].payload == {"n": 0}
    assert await conn.fetchval("SELECT count(*) FROM tether_outbox") == 0


async def test_keep_published_marks_done(pg_dsn: str, conn: asyncpg.Connection) -> None:
    await produce(conn, 3)
    store = await PostgresOutboxStore.connect(pg_dsn, keep_published=True)
    try:
        await Relay(store, [ScriptedSink()]).run_once()
    finally:
        await store.close()
    states = await conn.fetch("SELECT state, finished_at FROM tether_outbox")
    assert [r["state"] for r in states] == ["done"] * 3
    assert all(r["finished_at"] is not None for r in states)


async def test_failed_event_retries_with_backoff_then_succeeds(conn: asyncpg.Connection, store: PostgresOutboxStore) -> None:
    ids = await produce(conn, 3)
    sink = ScriptedSink()
    sink.fail = lambda e: Outcome.failed("rejected") if str(e.id) == ids[1] else None
    relay = Relay(store, [sink], config=RelayConfig(retry=RetryPolicy(base=timedelta(hours=1), cap=timedelta(hours=1))))
    report = await relay.run_once()
    assert (report.published, report.retried) == (2, 1)
    row = await conn.fetchrow("SELECT attempts, state, last_error, errors, available_at > now() AS later FROM tether_outbox")
    assert row["attempts"] == 1 and row["state"] == "pending" and row["later"]
    assert row["last_error"] == "scripted: rejected"
    assert '"attempt": 1' in row["errors"]
    # Not due yet: nothing to claim.
    assert (await relay.run_once()).claimed == 0
    await conn.execute("UPDATE tether_outbox SET available_at = now()")
    sink.fail = lambda e: None
    assert (await relay.run_once()).published == 1
    assert str(sink.received[-1].id) == ids[1]


async def test_exhausted_attempts_dead_letter_with_history(conn: asyncpg.Connection, store: PostgresOutboxStore) -> None:
    await produce(conn, 1)
    sink = ScriptedSink()
    sink.fail = lambda e: Outcome.failed("boom")
    relay = Relay(store, [sink], config=RelayConfig(retry=FAST_RETRY))
    for _ in range(3):
        await conn.execute("UPDATE tether_outbox SET available_at = now() WHERE state = 'pending'")
        await relay.run_once()
    row = await conn.fetchrow("SELECT state, attempts, finished_at, jsonb_array_length(errors) AS n FROM tether_outbox")
    assert row["state"] == "dead" and row["attempts"] == 3 and row["n"] == 3
    assert row["finished_at"] is not None
    assert relay.stats.dead == 1


async def test_non_retryable_failure_dead_letters_at_once(conn: asyncpg.Connection, store: PostgresOutboxStore) -> None:
    await produce(conn, 1)
    sink = ScriptedSink()
    sink.fail = lambda e: Outcome.failed("schema rejected", retryable=False)
    report = await Relay(store, [sink]).run_once()
    assert report.dead == 1
    assert await conn.fetchval("SELECT state FROM tether_outbox") == "dead"


async def test_unavailable_sink_spends_no_attempts(conn: asyncpg.Connection, store: PostgresOutboxStore) -> None:
    await produce(conn, 5)
    sink = ScriptedSink()
    sink.unavailable = True
    relay = Relay(store, [sink])
    report = await relay.run_once()
    assert report.deferred == 5
    rows = await conn.fetch("SELECT attempts, state FROM tether_outbox")
    assert {(r["attempts"], r["state"]) for r in rows} == {(0, "pending")}
    sink.unavailable = False
    await conn.execute("UPDATE tether_outbox SET available_at = now()")
    relay._down_until.clear()
    assert (await relay.run_once()).published == 5


async def test_poison_event_costs_only_itself(conn: asyncpg.Connection, store: PostgresOutboxStore) -> None:
    ids = await produce(conn, 4)
    sink = ScriptedSink()
    sink.raise_for = lambda e: str(e.id) == ids[2]
    report = await Relay(store, [sink]).run_once()
    assert (report.published, report.retried) == (3, 1)
    assert await conn.fetchval("SELECT id::text FROM tether_outbox") == ids[2]


async def test_unrouted_event_is_dead_lettered_not_dropped(conn: asyncpg.Connection, store: PostgresOutboxStore) -> None:
    await produce(conn, 1, topic="billing")
    sink = ScriptedSink("nats")
    router = Router([Route(("nats",), topic="orders.*")], ["nats"])
    report = await Relay(store, [sink], router=router).run_once()
    assert report.dead == 1
    assert "no route" in await conn.fetchval("SELECT last_error FROM tether_outbox")


async def test_partial_fanout_retries_only_the_failed_sink(conn: asyncpg.Connection, store: PostgresOutboxStore) -> None:
    await produce(conn, 1)
    good, bad = ScriptedSink("good"), ScriptedSink("bad")
    bad.fail = lambda e: Outcome.failed("nope")
    relay = Relay(store, [good, bad])
    await relay.run_once()
    assert await conn.fetchval("SELECT done_sinks FROM tether_outbox") == ["good"]
    bad.fail = lambda e: None
    await conn.execute("UPDATE tether_outbox SET available_at = now()")
    await relay.run_once()
    assert len(good.received) == 1 and len(bad.received) == 1
    assert await conn.fetchval("SELECT count(*) FROM tether_outbox") == 0


async def test_failing_head_blocks_only_its_own_key(conn: asyncpg.Connection, store: PostgresOutboxStore) -> None:
    a = await produce(conn, 3, aggregate_type="order", aggregate_id="A")
    b = await produce(conn, 3, aggregate_type="order", aggregate_id="B")
    sink = ScriptedSink()
    sink.fail = lambda e: Outcome.failed("down") if str(e.id) == a[0] else None
    relay = Relay(store, [sink], config=RelayConfig(retry=RetryPolicy(base=timedelta(hours=1), cap=timedelta(hours=1))))
    await drain(relay)
    assert [str(e.id) for e in sink.received] == b  # B flows, A waits behind its failed head
    await conn.execute("UPDATE tether_outbox SET available_at = now()")
    sink.fail = lambda e: None
    await drain(relay)
    assert [str(e.id) for e in sink.received] == b + a


async def test_one_event_per_key_per_batch(conn: asyncpg.Connection, store: PostgresOutboxStore) -> None:
    await produce(conn, 4, aggregate_type="order", aggregate_id="A")
    sink = ScriptedSink()
    relay = Relay(store, [sink])
    sizes = []
    for _ in range(5):
        sizes.append((await relay.run_once()).claimed)
    assert sizes == [1, 1, 1, 1, 0]


async def test_concurrent_relays_keep_per_aggregate_order(pg_dsn: str, conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        for i in range(40):
            for agg in range(25):
                await add_event(conn, "Step", {"i": i}, aggregate_type="order", aggregate_id=str(agg))
    sink = ScriptedSink()
    stores = [await PostgresOutboxStore.connect(pg_dsn, connections=2) for _ in range(3)]
    relays = [Relay(s, [sink], config=RelayConfig(batch_size=7, concurrency=2)) for s in stores]
    stop = asyncio.Event()
    runners = [asyncio.create_task(r.run(stop)) for r in relays]
    try:
        async with asyncio.timeout(60), sink.arrived:
            await sink.arrived.wait_for(lambda: len(sink.received) >= 1000)
    finally:
        stop.set()
        await asyncio.gather(*runners)
        for s in stores:
            await s.close()
    seen: dict[str, list[int]] = {}
    for e in sink.received:
        seen.setdefault(e.aggregate_id or "", []).append(e.payload["i"])
    assert len(sink.received) == 1000
    assert all(steps == list(range(40)) for steps in seen.values())
    assert sum(r.stats.published for r in relays) == 1000
