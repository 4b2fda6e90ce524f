"""The overview's throughput and lag chart, from the runner registry's stored history.

The registry keeps every runner's heartbeats (``tether.ops.runners``), so the chart covers the
time nobody watched and survives a dashboard restart. The oldest pending age is no runner's
figure: the dashboard samples it while a page is open (``series.PendingAges``) and puts each
sample in its bucket.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tether.dashboard.kinds import BadFilter
from tether.ops.runners.model import bucket_start

if TYPE_CHECKING:
    from tether.ops.runners import HistoryPoint


@dataclass(frozen=True, slots=True)
class Range:
    name: str
    span: timedelta
    bucket_s: int  # 120 to 144 points whatever the span; a bucket spans a few heartbeats


RANGES = {
    r.name: r
    for r in (
        Range("1h", timedelta(hours=1), 30),
        Range("6h", timedelta(hours=6), 180),
        Range("24h", timedelta(hours=24), 600),
    )
}
DEFAULT_RANGE = "1h"


def parse_range(text: str | None) -> Range:
    if not text:
        return RANGES[DEFAULT_RANGE]
    found = RANGES.get(text)
    if found is None:
        raise BadFilter(f"range: use one of {', '.join(RANGES)}, got {text[:20]!r}")
    return found


# (label, kind or None for every kind, key, rate or gauge); the label ending " s" goes on the
# seconds axis.
LINES: tuple[tuple[str, str | None, str, bool], ...] = (
    ("events published/s", "relay", "published_total", True),
    ("jobs done/s", "job-worker", "done_total", True),
    ("deliveries/s", "webhook-dispatcher", "delivered_total", True),
    ("dead/s", None, "dead_total", True),
    ("relay lag s", "relay", "lag_s", False),
)
OLDEST = "oldest pending s"


def bucket_of(at: datetime, bucket_s: int) -> int:
    """A time's bucket start, unix seconds: the registry's own bucket, so the chart's x values
    are exactly the buckets its history reports."""
    return int(bucket_start(at, bucket_s).timestamp())


def chart(
    points: Iterable[HistoryPoint],
    since: datetime,
    now: datetime,
    bucket_s: int,
    oldest: Iterable[tuple[float, float]] = (),
) -> dict[str, Any]:
    """uPlot's data layout: ``x`` (every bucket start from ``since`` to ``now``, unix seconds,
    so a time nobody reported is a gap) and one array per line. ``oldest``: sampled
    (unix seconds, oldest pending age) pairs; a bucket shows its largest."""
    first, last = bucket_of(since, bucket_s), bucket_of(now, bucket_s)
    xs = list(range(first, last + 1, bucket_s))
    at = {x: i for i, x in enumerate(xs)}
    lines: dict[str, list[float | None]] = {label: [None] * len(xs) for label, *_ in LINES}
    lines[OLDEST] = [None] * len(xs)
    for p in points:
        i = at.get(bucket_of(p.at, bucket_s))
        if i is None:
            continue
        for label, kind, key, rate in LINES:
            if kind is not None and p.kind != kind:
                continue
            value = (p.rates if rate else p.gauges).get(key)
            if value is None:
                continue
            line = lines[label]
            held = line[i]
            # Rates of several kinds add up (dead/s); a gauge shows its worst (lag).
            line[i] = value if held is None else (held + value if rate else max(held, value))
    for t, age in oldest:
        i = at.get(int(t) - int(t) % bucket_s)
        if i is not None:
            held = lines[OLDEST][i]
            lines[OLDEST][i] = age if held is None else max(held, age)
    rounded = {
        label: [None if v is None else round(v, 4) for v in values]
        for label, values in lines.items()
    }
    return {"x": xs, "series": rounded, "bucket_s": bucket_s}
