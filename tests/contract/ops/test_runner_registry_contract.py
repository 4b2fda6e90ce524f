"""The runner registry's contract: the memory and PostgreSQL adapters pass this one suite.

Time is a pinned clock handed to the registry, so statuses, history buckets and pruning are
exact and no test sleeps.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tether.core.clock import FrozenClock
from tether.ops.runners import (
    HistoryPoint,
    MemoryRunnerRegistry,
    PostgresRunnerRegistry,
    RunnerRegistry,
    UnknownRunner,
)
from tether.ops.runners import postgres as runners_postgres

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Harness:
    registry: RunnerRegistry
    clock: FrozenClock


@pytest.fixture(params=["memory", "postgres"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = FrozenClock(START)
    if request.param == "memory":
        yield Harness(MemoryRunnerRegistry(clock=clock), clock)
        return
    dsn = request.getfixturevalue("pg_dsn")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        yield Harness(PostgresRunnerRegistry(pool, clock=clock), clock)
    finally:
        await pool.close()


async def test_register_lists_the_runner_alive_with_this_process(harness: Harness) -> None:
    runner_id = await harness.registry.register("relay", "relay-a", 10.0, {"published_total": 0})
    [info] = await harness.registry.runners()
    assert info.id == runner_id
    assert (info.kind, info.name, info.pid) == ("relay", "relay-a", os.getpid())
    assert info.host
    assert info.started_at == info.heartbeat_at == START
    assert info.interval_s == 10.0
    assert info.stopped_at is None
    assert info.stats == {"published_total": 0.0}
    assert info.status(START) == "alive"


async def test_beats_keep_it_alive_and_silence_turns_it_late_then_lost(harness: Harness) -> None:
    runner_id = await harness.registry.register("job-worker", "w", 10.0, {})
    harness.clock.advance(20)
    await harness.registry.beat(runner_id, {"done_total": 5, "in_flight": 2})
    [info] = await harness.registry.runners()
    assert info.heartbeat_at == START + timedelta(seconds=20)
    assert info.stats == {"done_total": 5.0, "in_flight": 2.0}
    beat = info.heartbeat_at
    assert info.status(beat + timedelta(seconds=25)) == "alive"
    assert info.status(beat + timedelta(seconds=26)) == "late"
    assert info.status(beat + timedelta(seconds=60)) == "late"
    assert info.status(beat + timedelta(seconds=61)) == "lost"


async def test_stop_marks_it_stopped_with_its_final_stats(harness: Harness) -> None:
    runner_id = await harness.registry.register("webhook-dispatcher", "d", 10.0, {})
    harness.clock.advance(3)
    await harness.registry.stop(runner_id, {"delivered_total": 7})
    [info] = await harness.registry.runners()
    assert info.stopped_at == START + timedelta(seconds=3)
    assert info.stats == {"delivered_total": 7.0}
    assert info.status(START + timedelta(days=1)) == "stopped"


async def test_listing_shows_live_ones_and_those_gone_within_the_window(harness: Harness) -> None:
    registry = harness.registry
    stopped = await registry.register("relay", "stopped-early", 10.0, {})
    await registry.stop(stopped, {})
    harness.clock.advance(3600)
    lost = await registry.register("relay", "lost", 10.0, {})
    harness.clock.advance(3600)
    alive = await registry.register("relay", "alive", 10.0, {})
    gateway = await registry.register("realtime-gateway", "gw", 10.0, {"connections": 3})
    # Newest first within a kind, kinds in order.
    assert [i.id for i in await registry.runners()] == [gateway, alive, lost, stopped]
    shown = await registry.runners(gone_for=timedelta(minutes=90))
    assert [i.id for i in shown] == [gateway, alive, lost]
    shown = await registry.runners(gone_for=timedelta(minutes=1))
    assert [i.id for i in shown] == [gateway, alive]


async def test_beat_or_stop_of_an_unknown_runner_is_refused(harness: Harness) -> None:
    with pytest.raises(UnknownRunner):
        await harness.registry.beat(uuid.uuid4(), {})
    with pytest.raises(UnknownRunner):
        await harness.registry.stop(uuid.uuid4(), {})


@pytest.mark.parametrize(
    ("kind", "name", "interval", "stats", "message"),
    [
        ("", "n", 10.0, {}, "kind"),
        ("relay", " ", 10.0, {}, "name"),
        ("relay", "n", 0.0, {}, "interval_s"),
        ("relay", "n", float("nan"), {}, "interval_s"),
        ("relay", "n", 10.0, {"x_total": float("inf")}, "'x_total' must be finite"),
        ("relay", "n", 10.0, {"x": "3"}, "'x' must be a number"),
    ],
)
async def test_bad_registrations_are_refused_naming_the_field(
    harness: Harness, kind: str, name: str, interval: float, stats: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await harness.registry.register(kind, name, interval, stats)
    assert await harness.registry.runners() == []


async def test_history_sums_counter_increases_per_kind_and_keeps_gauge_highs(
    harness: Harness,
) -> None:
    registry = harness.registry
    a = await registry.register("relay", "a", 10.0, {"published_total": 100, "lag_s": 0.5})
    b = await registry.register("relay", "b", 10.0, {"published_total": 0})
    w = await registry.register("job-worker", "w", 10.0, {"done_total": 0, "in_flight": 1})
    harness.clock.advance(30)
    await registry.beat(a, {"published_total": 130, "lag_s": 2.0})
    await registry.beat(b, {"published_total": 60})
    await registry.beat(w, {"done_total": 6, "in_flight": 4})
    harness.clock.advance(30)  # 12:01:00, the next minute
    await registry.beat(a, {"published_total": 190, "lag_s": 1.0})
    await registry.beat(w, {"done_total": 12, "in_flight": 0})

    points = await registry.history(START, 60)
    minute = START + timedelta(minutes=1)
    assert points == [
        # The first report of a counter counts from there: a's 100 at registration is no increase.
        HistoryPoint(START, "job-worker", {"done_total": 0.1}, {"in_flight": 4.0}),
        HistoryPoint(START, "relay", {"published_total": 1.5}, {"lag_s": 2.0}),
        HistoryPoint(minute, "job-worker", {"done_total": 0.1}, {"in_flight": 0.0}),
        HistoryPoint(minute, "relay", {"published_total": 1.0}, {"lag_s": 1.0}),
    ]


async def test_history_counts_a_reset_counter_as_restarted_from_zero(harness: Harness) -> None:
    registry = harness.registry
    runner = await registry.register("consumer", "c", 10.0, {"handled_total": 0})
    for value in (40, 100, 5, 25):  # 100 -> 5: the counter was reset
        harness.clock.advance(10)
        await registry.beat(runner, {"handled_total": value})
    [point] = await registry.history(START, 60)
    assert point.rates == {"handled_total": pytest.approx((40 + 60 + 5 + 20) / 60)}


async def test_history_window_counts_from_the_last_beat_before_it(harness: Harness) -> None:
    registry = harness.registry
    runner = await registry.register("relay", "r", 10.0, {"published_total": 0})
    harness.clock.advance(50)
    await registry.beat(runner, {"published_total": 50})
    harness.clock.advance(20)  # 12:01:10
    await registry.beat(runner, {"published_total": 80})
    points = await registry.history(START + timedelta(minutes=1), 60)
    # 50 -> 80 across the window's start: the whole step lands in the bucket it arrived in.
    assert points == [
        HistoryPoint(START + timedelta(minutes=1), "relay", {"published_total": 0.5}, {})
    ]


async def test_history_refuses_a_bad_bucket(harness: Harness) -> None:
    with pytest.raises(ValueError, match="bucket_s"):
        await harness.registry.history(START, 0)


async def test_prune_drops_old_points_and_long_gone_runners(harness: Harness) -> None:
    registry = harness.registry
    gone = await registry.register("relay", "gone", 10.0, {"published_total": 0})
    harness.clock.advance(1)
    await registry.stop(gone, {"published_total": 1})
    kept = await registry.register("relay", "kept", 10.0, {"published_total": 0})
    harness.clock.advance(timedelta(hours=23))
    await registry.beat(kept, {"published_total": 10})
    harness.clock.advance(timedelta(hours=2))
    await registry.beat(kept, {"published_total": 20})
    # Over 24 hours old: gone's two points and kept's first; gone itself is kept for 7 days.
    assert await registry.prune() == 3
    assert {i.name for i in await registry.runners(gone_for=timedelta(days=30))} == {"gone", "kept"}
    # kept's remaining points: 10 -> 20 in the last hour.
    assert [p.rates for p in await registry.history(START + timedelta(hours=24), 3600)] == [
        {"published_total": pytest.approx(10 / 3600)},
    ]
    harness.clock.advance(timedelta(days=7))
    # Registering prunes: gone has been stopped for over 7 days, kept silent for 7 days exactly.
    await registry.register("relay", "new", 10.0, {})
    names = {i.name for i in await registry.runners(gone_for=timedelta(days=30))}
    assert names == {"kept", "new"}

    # kept's points went with that prune; new's registration point reports no stats.
    assert await registry.history(START, 3600) == []
    harness.clock.advance(1)
    # new's registration point, and kept, now silent for over 7 days.
    assert await registry.prune(timedelta(0)) == 2


async def test_prune_deletes_a_backlog_in_batches(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runners_postgres, "_PRUNE_BATCH", 5)
    runner = await harness.registry.register("relay", "r", 1.0, {"published_total": 0})
    for n in range(12):
        harness.clock.advance(1)
        await harness.registry.beat(runner, {"published_total": n})
    harness.clock.advance(timedelta(hours=25))
    assert await harness.registry.prune() == 13  # the registration's point and 12 beats
    assert await harness.registry.history(START, 60) == []


async def test_history_in_buckets_shorter_than_a_minute(harness: Harness) -> None:
    registry = harness.registry
    runner = await registry.register("relay", "r", 5.0, {"published_total": 0, "lag_s": 1})
    for value, lag in ((10, 3), (30, 2), (35, 0)):
        harness.clock.advance(10)
        await registry.beat(runner, {"published_total": value, "lag_s": lag})
    points = await registry.history(START + timedelta(seconds=5), 20)
    # Since is taken back to its bucket's start: the registration's point is in the first one.
    assert [(p.at - START, p.rates, p.gauges) for p in points] == [
        (timedelta(0), {"published_total": 0.5}, {"lag_s": 3.0}),
        (timedelta(seconds=20), {"published_total": pytest.approx(25 / 20)}, {"lag_s": 2.0}),
    ]


async def test_postgres_minutes_rebuilt_from_the_beats_match_the_kept_ones(
    harness: Harness,
) -> None:
    registry = harness.registry
    if not isinstance(registry, PostgresRunnerRegistry):
        return  # the memory registry reads its beats directly: no per-minute rows
    runner = await registry.register("relay", "r", 10.0, {"published_total": 0, "lag_s": 1})
    for value in (40, 100, 5, 25, 70, 90):  # 100 -> 5: a reset; beats over three minutes
        harness.clock.advance(20)
        await registry.beat(runner, {"published_total": value, "lag_s": value / 10})
    kept = await registry.history(START, 60)
    assert await registry.rebuild_minutes(START) == 6  # three minutes, two stats each
    assert await registry.history(START, 60) == kept
    assert [p.rates for p in kept] == [
        {"published_total": pytest.approx((40 + 60) / 60)},
        {"published_total": pytest.approx((5 + 20 + 45) / 60)},
        {"published_total": pytest.approx(20 / 60)},
    ]
