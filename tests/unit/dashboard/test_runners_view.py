"""The overview's runner rows and the history chart's layout, from registry values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tether.core.clock import FrozenClock
from tether.dashboard.history import OLDEST, bucket_of, chart, parse_range
from tether.dashboard.history_cache import REREAD, HistoryCache
from tether.dashboard.kinds import BadFilter
from tether.dashboard.runners_view import rate_now, runner_rows
from tether.ops.runners import HistoryPoint, MemoryRunnerRegistry, RunnerInfo

NOW = datetime(2026, 12, 2, 12, 0, 5, tzinfo=UTC)


def info(
    kind: str, name: str, beat_ago: float, stopped: bool = False, **stats: float
) -> RunnerInfo:
    return RunnerInfo(
        uuid.uuid4(), kind, name, "host-1", 42, NOW - timedelta(hours=1),
        NOW - timedelta(seconds=beat_ago), 10.0,
        NOW - timedelta(seconds=beat_ago) if stopped else None, dict(stats),
    )  # fmt: skip


def test_runner_rows_put_lost_first_and_show_each_kinds_key_figures() -> None:
    rows = runner_rows(
        [
            info("relay", "relay-a", 3, published_total=1234.0, dead_total=2.0, lag_s=0.5),
            info("job-worker", "gone", 600, in_flight=3.0, done_total=10.0),
            info("webhook-dispatcher", "quiet", 20, delivered_total=0.0),
            info("consumer", "done", 900, stopped=True, handled_total=5.0),
        ],
        NOW,
    )
    assert [(r.info.name, r.status) for r in rows] == [
        ("gone", "lost"), ("relay-a", "alive"), ("quiet", "alive"), ("done", "stopped"),
    ]  # fmt: skip
    relay = rows[1]
    assert [(s.label, s.text) for s in relay.stats] == [
        ("published", "1,234"), ("dead", "2"), ("lag", "0.5 s"),
    ]  # fmt: skip
    assert relay.where == "host-1/42" and relay.beat_age == timedelta(seconds=3)
    assert [s.label for s in rows[0].stats] == ["done", "in flight"]
    assert [r.info.name for r in runner_rows([rows[0].info], NOW, kind="relay")] == []


def test_rate_now_is_between_the_last_two_beats_and_survives_a_restart() -> None:
    t = NOW
    beats = [(t, {"messages_total": 150.0}), (t - timedelta(seconds=10), {"messages_total": 100.0})]
    assert rate_now(beats, "messages_total") == 5.0
    reset = [(t, {"messages_total": 20.0}), (t - timedelta(seconds=10), {"messages_total": 900.0})]
    assert rate_now(reset, "messages_total") == 2.0
    assert rate_now(beats[:1], "messages_total") is None


def test_chart_puts_each_kind_in_its_line_and_leaves_silent_buckets_empty() -> None:
    since = NOW - timedelta(minutes=2)
    b = bucket_of(NOW, 30)
    at = datetime.fromtimestamp(b - 30, UTC)
    points = [
        HistoryPoint(at, "relay", {"published_total": 40.0, "dead_total": 1.0}, {"lag_s": 0.5}),
        HistoryPoint(at, "job-worker", {"done_total": 7.5, "dead_total": 0.5}, {"in_flight": 2}),
        HistoryPoint(at - timedelta(hours=3), "relay", {"published_total": 9.0}, {}),  # outside
    ]
    data = chart(points, since, NOW, 30, oldest=[(b + 1, 4.0), (b + 2, 6.0)])
    assert data["x"][-1] == b and data["x"][0] == bucket_of(since, 30)
    i = data["x"].index(b - 30)
    lines = data["series"]
    assert lines["events published/s"][i] == 40.0 and lines["jobs done/s"][i] == 7.5
    assert lines["dead/s"][i] == 1.5 and lines["relay lag s"][i] == 0.5
    assert lines["deliveries/s"][i] is None and lines["events published/s"][0] is None
    assert lines[OLDEST][-1] == 6.0
    assert all(len(v) == len(data["x"]) for v in lines.values())


def test_ranges_are_named_and_a_bad_one_is_refused() -> None:
    assert parse_range(None).bucket_s == 30 and parse_range("24h").bucket_s == 600
    with pytest.raises(BadFilter, match="range: use one of 1h, 6h, 24h"):
        parse_range("7d")


async def test_history_cache_reads_closed_buckets_once_and_answers_as_a_full_read() -> None:
    clock = FrozenClock(datetime(2026, 12, 2, 10, 0, 3, tzinfo=UTC))
    registry = MemoryRunnerRegistry(clock=clock)
    reads: list[tuple[datetime, datetime]] = []  # (since, when read)
    real_history = registry.history

    async def history(since: datetime, bucket_s: int) -> list[HistoryPoint]:
        reads.append((since, clock.now()))
        return await real_history(since, bucket_s)

    registry.history = history  # type: ignore[method-assign]
    relay = await registry.register("relay", "r", 10.0, {"published_total": 0.0})
    cache = HistoryCache()
    span = timedelta(minutes=30)
    for step in range(1, 200):  # 33 minutes of beats every 10 s, the chart read every 10 s
        clock.advance(10)
        await registry.beat(relay, {"published_total": step * 50.0, "lag_s": step % 3})
        now = clock.now()
        got = await cache.points(registry, now - span, now, 30)
    assert reads[0][0] == datetime.fromtimestamp(bucket_of(reads[0][0], 30), UTC)
    # After the first read, each asks for the last few buckets only.
    assert all(at - since <= timedelta(seconds=(REREAD + 2) * 30) for since, at in reads[1:])
    full = await real_history(datetime.fromtimestamp(bucket_of(now - span, 30), UTC), 30)
    assert got == full and len(got) >= 60
