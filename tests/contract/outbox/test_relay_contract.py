"""The relay contract, run against every store adapter: publish, retry, defer, dead-letter,
route, order. Adapters that cannot host concurrent relays (SQLite) switch those cases off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.contract.outbox.harness import Harness, PgHarness, open_sqlite
from tests.support.scripted_sink import ScriptedSink
from tether.core import lifecycle
from tether.core.backoff import RetryPolicy
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.routing import Route, Router
from tether.sinks.base import Outcome

FAST_RETRY = RetryPolicy(
    max_attempts=3, base=timedelta(milliseconds=1), cap=timedelta(milliseconds=2)
)
LATER = RetryPolicy(base=timedelta(hours=1), cap=timedelta(hours=1))


@pytest.fixture(params=["postgres", "sqlite"])
async def h(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    if request.param == "postgres":
        dsn = request.getfixturevalue("pg_dsn")
        harness: Harness = PgHarness(dsn, await asyncpg.connect(dsn))
    else:
        harness = await open_sqlite(str(tmp_path / "outbox.db"))
    yield harness
    await harness.close()


async def drain(relay: Relay, rounds: int = 50) -> None:
    for _ in range(rounds):
        if (await relay.run_once()).claimed == 0:
            return
    raise AssertionError("relay did not drain")


async def test_publishes_in_order_and_deletes(h: Harness) -> None:
    ids = await h.produce(25)
    sink = ScriptedSink()
    async with h.store() as store:
        report = await Relay(store, [sink]).run_once()
    assert report.claimed == 25 and report.published == 25
    assert [str(e.id) for e in sink.received] == ids
    assert sink.received[0].payload == {"n": 0}
    assert await h.rows() == []


async def test_keep_published_marks_done(h: Harness) -> None:
    await h.produce(3)
    async with h.store(keep_published=True) as store:
        await Relay(store, [ScriptedSink()]).run_once()
    rows = await h.rows()
    assert [r["state"] for r in rows] == ["done"] * 3
    assert all(r["finished_at"] is not None for r in rows)


async def test_failed_event_retries_with_backoff_then_succeeds(h: Harness) -> None:
    ids = await h.produce(3)
    sink = ScriptedSink()
    sink.fail = lambda e: Outcome.failed("rejected") if str(e.id) == ids[1] else None
    async with h.store() as store:
        relay = Relay(store, [sink], config=RelayConfig(retry=LATER))
        report = await relay.run_once()
        assert (report.published, report.retried) == (2, 1)
        [row] = await h.rows()
        assert row["attempts"] == 1 and row["state"] == "pending"
        assert row["last_error"] == "scripted: rejected"
        assert [e["attempt"] for e in row["errors"]] == [1]
        assert (await relay.run_once()).claimed == 0  # not due yet
        await h.make_due()
        sink.fail = lambda e: None
        assert (await relay.run_once()).published == 1
    assert str(sink.received[-1].id) == ids[1]


async def test_exhausted_attempts_dead_letter_with_history(h: Harness) -> None:
    await h.produce(1)
    sink = ScriptedSink()
    sink.fail = lambda e: Outcome.failed("boom")
    async with h.store() as store:
        relay = Relay(store, [sink], config=RelayConfig(retry=FAST_RETRY))
        for _ in range(3):
            await h.make_due()
            await relay.run_once()
    [row] = await h.rows()
    assert row["state"] == "dead" and row["attempts"] == 3 and len(row["errors"]) == 3
    assert row["finished_at"] is not None
    assert relay.stats.dead == 1


async def test_non_retryable_failure_dead_letters_at_once(h: Harness) -> None:
    await h.produce(1)
    sink = ScriptedSink()
    sink.fail = lambda e: Outcome.failed("schema rejected", retryable=False)
    async with h.store() as store:
        report = await Relay(store, [sink]).run_once()
    assert report.dead == 1
    assert [r["state"] for r in await h.rows()] == ["dead"]


async def test_unavailable_sink_spends_no_attempts(h: Harness) -> None:
    await h.produce(5)
    sink = ScriptedSink()
    sink.unavailable = True
    async with h.store() as store:
        relay = Relay(store, [sink])
        assert (await relay.run_once()).deferred == 5
        rows = await h.rows()
        assert {(r["attempts"], r["state"], len(r["errors"])) for r in rows} == {(0, "pending", 0)}
        assert all("unavailable" in r["last_error"] for r in rows)
        sink.unavailable = False
        await h.make_due()
        relay.pauses.clear()
        assert (await relay.run_once()).published == 5


async def test_deferred_event_waits_the_sinks_wait_and_spends_no_attempt(h: Harness) -> None:
    first, _ = await h.produce(2)
    sink = ScriptedSink()
    sink.fail = lambda e: (
        Outcome.deferred("asked to wait (Retry-After 30s)", 30.0) if str(e.id) == first else None
    )
    async with h.store() as store:
        relay = Relay(store, [sink])
        report = await relay.run_once()
        assert (report.published, report.deferred, report.retried) == (1, 1, 0)
        assert not relay.pauses.paused(sink.name)  # one event's wait does not pause the sink
        [row] = await h.rows()
        assert (row["id"], row["attempts"], row["state"], row["errors"]) == (
            first,
            0,
            "pending",
            [],
        )
        assert "Retry-After" in row["last_error"]
        assert (await relay.run_once()).claimed == 0  # not due for another ~30 s
        await h.make_due()
        sink.fail = lambda e: None
        assert (await relay.run_once()).published == 1


def test_a_deferral_needs_a_wait() -> None:
    with pytest.raises(ValueError, match="0 seconds or more"):
        Outcome.deferred("later", float("nan"))


async def test_long_errors_are_clipped_once_to_the_lifecycle_limit(h: Harness) -> None:
    await h.produce(1)
    sink = ScriptedSink()
    sink.fail = lambda e: Outcome.failed("x" * 100_000, retryable=False)
    async with h.store() as store:
        await Relay(store, [sink]).run_once()
    [row] = await h.rows()
    assert len(row["last_error"]) == lifecycle.MAX_ERROR_CHARS
    [entry] = row["errors"]
    assert entry.keys() == {"at", "attempt", "error"}  # the work-item engine's shape
    assert (entry["attempt"], entry["error"]) == (1, row["last_error"])


async def test_poison_event_costs_only_itself(h: Harness) -> None:
    ids = await h.produce(4)
    sink = ScriptedSink()
    sink.raise_for = lambda e: str(e.id) == ids[2]
    async with h.store() as store:
        report = await Relay(store, [sink]).run_once()
    assert (report.published, report.retried) == (3, 1)
    assert [r["id"] for r in await h.rows()] == [ids[2]]


async def test_unrouted_event_is_dead_lettered_not_dropped(h: Harness) -> None:
    await h.produce(1, topic="billing")
    router = Router([Route(("nats",), topic="orders.*")], ["nats"])
    async with h.store() as store:
        report = await Relay(store, [ScriptedSink("nats")], router=router).run_once()
    assert report.dead == 1
    assert "no route" in (await h.rows())[0]["last_error"]


async def test_partial_fanout_retries_only_the_failed_sink(h: Harness) -> None:
    await h.produce(1)
    good, bad = ScriptedSink("good"), ScriptedSink("bad")
    bad.fail = lambda e: Outcome.failed("nope")
    async with h.store() as store:
        relay = Relay(store, [good, bad])
        await relay.run_once()
        assert list((await h.rows())[0]["done_sinks"]) == ["good"]
        bad.fail = lambda e: None
        await h.make_due()
        await relay.run_once()
    assert len(good.received) == 1 and len(bad.received) == 1
    assert await h.rows() == []


async def test_failing_head_blocks_only_its_own_key(h: Harness) -> None:
    a = await h.produce(3, aggregate_type="order", aggregate_id="A")
    b = await h.produce(3, aggregate_type="order", aggregate_id="B")
    sink = ScriptedSink()
    sink.fail = lambda e: Outcome.failed("down") if str(e.id) == a[0] else None
    async with h.store() as store:
        relay = Relay(store, [sink], config=RelayConfig(retry=LATER))
        await drain(relay)
        assert [str(e.id) for e in sink.received] == b  # B flows, A waits behind its failed head
        await h.make_due()
        sink.fail = lambda e: None
        await drain(relay)
    assert [str(e.id) for e in sink.received] == b + a


async def test_dead_head_releases_its_followers(h: Harness) -> None:
    a = await h.produce(2, aggregate_type="order", aggregate_id="A")
    sink = ScriptedSink()
    sink.fail = lambda e: Outcome.failed("bad", retryable=False) if str(e.id) == a[0] else None
    async with h.store() as store:
        await drain(Relay(store, [sink]))
    assert [str(e.id) for e in sink.received] == [a[1]]
    assert [(r["id"], r["state"]) for r in await h.rows()] == [(a[0], "dead")]


async def test_a_key_alone_takes_the_whole_batch(h: Harness) -> None:
    await h.produce(4, aggregate_type="order", aggregate_id="A")
    async with h.store() as store:
        relay = Relay(store, [ScriptedSink()], config=RelayConfig(per_key_run=1))
        sizes = [(await relay.run_once()).claimed for _ in range(2)]
    assert sizes == [4, 0]


async def test_keys_share_a_batch_evenly(h: Harness) -> None:
    for _ in range(10):
        for key in "ABCD":
            await h.produce(1, aggregate_type="order", aggregate_id=key)
    sink = ScriptedSink()
    async with h.store() as store:
        relay = Relay(store, [sink], config=RelayConfig(batch_size=8, per_key_run=1))
        await relay.run_once()
    assert sorted(e.aggregate_id or "" for e in sink.received) == list("AABBCCDD")


async def test_a_hot_key_does_not_starve_the_others(h: Harness) -> None:
    await h.produce(120, aggregate_type="order", aggregate_id="hot")
    cold = [(await h.produce(1, aggregate_type="order", aggregate_id=k))[0] for k in "xyz"]
    unkeyed = await h.produce(1)
    sink = ScriptedSink()
    async with h.store() as store:
        relay = Relay(store, [sink], config=RelayConfig(batch_size=40, per_key_run=4))
        report = await relay.run_once()
    got = {str(e.id) for e in sink.received}
    assert set(cold + unkeyed) <= got  # all behind 120 hot events, all in the first batch
    assert report.claimed == 40  # the room the cold keys left went to the hot key


async def test_a_blocked_deep_key_does_not_hold_back_the_rest(h: Harness) -> None:
    blocked = await h.produce(60, aggregate_type="order", aggregate_id="stuck")
    await h.postpone(blocked[0])  # a failing head: its key waits, nothing else may
    others = await h.produce(2, aggregate_type="order", aggregate_id="free")
    unkeyed = await h.produce(2)
    sink = ScriptedSink()
    async with h.store() as store:
        relay = Relay(store, [sink], config=RelayConfig(batch_size=10))
        await drain(relay)
    assert [str(e.id) for e in sink.received if e.aggregate_id == "free"] == others
    assert {str(e.id) for e in sink.received} == set(others + unkeyed)


async def test_runs_move_a_hot_key_in_order_one_event_per_sink_call(h: Harness) -> None:
    ids = await h.produce(40, aggregate_type="order", aggregate_id="hot")
    sink = ScriptedSink()
    async with h.store() as store:
        relay = Relay(store, [sink], config=RelayConfig(batch_size=16))
        sizes = [(await relay.run_once()).claimed for _ in range(4)]
    assert sizes == [16, 16, 8, 0]
    assert [str(e.id) for e in sink.received] == ids
    assert all(len(call) == 1 for call in sink.calls)  # never two events of a key in one call


async def test_failure_mid_run_holds_back_the_rest_of_the_key(h: Harness) -> None:
    a = await h.produce(4, aggregate_type="order", aggregate_id="A")
    b = await h.produce(2, aggregate_type="order", aggregate_id="B")
    sink = ScriptedSink()
    sink.fail = lambda e: Outcome.failed("later") if str(e.id) == a[1] else None
    async with h.store() as store:
        relay = Relay(store, [sink], config=RelayConfig(retry=LATER))
        report = await relay.run_once()
        assert (report.claimed, report.published, report.retried) == (6, 3, 1)
        rows = {r["id"]: r for r in await h.rows()}
        assert set(rows) == {a[1], a[2], a[3]}
        assert rows[a[2]]["attempts"] == 0 and rows[a[3]]["attempts"] == 0  # untouched
        assert (await relay.run_once()).claimed == 0  # a[1] not due, a[2] behind it
        await h.make_due()
        sink.fail = lambda e: None
        await drain(relay)
    assert [str(e.id) for e in sink.received] == [a[0], b[0], b[1], a[1], a[2], a[3]]


async def test_run_stops_at_a_follower_that_is_not_due(h: Harness) -> None:
    a = await h.produce(4, aggregate_type="order", aggregate_id="A")
    await h.postpone(a[2])
    sink = ScriptedSink()
    async with h.store() as store:
        relay = Relay(store, [sink])
        assert (await relay.run_once()).claimed == 2
        assert (await relay.run_once()).claimed == 0  # a[2] is now the head, and not due
        await h.make_due()
        await drain(relay)
    assert [str(e.id) for e in sink.received] == a


@pytest.fixture
async def pg_h(pg_dsn: str) -> AsyncIterator[Harness]:
    harness = PgHarness(pg_dsn, await asyncpg.connect(pg_dsn))
    yield harness
    await harness.close()


@pytest.mark.parametrize("shape", ["spread", "hot"])
async def test_concurrent_relays_keep_per_aggregate_order(pg_h: Harness, shape: str) -> None:
    """Only PostgreSQL hosts several relays at once; SQLite serves one process. ``hot`` puts
    most events on 3 keys."""
    h = pg_h
    ids = []
    for i in range(40):
        for agg in range(25):
            key = str(agg) if shape == "spread" or agg % 8 == 0 else str(agg % 3)
            ids += await h.produce(1, aggregate_type="order", aggregate_id=key)
    sink = ScriptedSink()
    stop = asyncio.Event()
    async with (
        h.store(connections=2) as s1,
        h.store(connections=2) as s2,
        h.store(connections=2) as s3,
    ):
        relays = [
            Relay(s, [sink], config=RelayConfig(batch_size=7, concurrency=2)) for s in (s1, s2, s3)
        ]
        runners = [asyncio.create_task(r.run(stop)) for r in relays]
        try:
            async with asyncio.timeout(60), sink.arrived:
                await sink.arrived.wait_for(lambda: len(sink.received) >= 1000)
        finally:
            stop.set()
            await asyncio.gather(*runners)
    position = {eid: n for n, eid in enumerate(ids)}
    seen: dict[str, list[int]] = {}
    for e in sink.received:
        seen.setdefault(e.aggregate_id or "", []).append(position[str(e.id)])
    assert len(sink.received) == 1000
    assert all(p == sorted(p) for p in seen.values())
    assert sum(r.stats.published for r in relays) == 1000
