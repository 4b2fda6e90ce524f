"""The registry's history as the chart asks for it every refresh, read once per bucket.

A bucket that ended a while ago no longer changes, so the dashboard keeps the points of the
buckets it has read and, on each refresh, asks the registry only for the last few buckets
(``REREAD`` of them: a heartbeat is stamped by its runner's clock and committed a moment later,
so it may land in a bucket that has just closed). The registry reads each runner's last beat
before ``since`` as the base of its first increase, so a window that starts on a bucket
boundary gives the same points as the whole range would.

Why keep it now that 6 h and 24 h come from the per-minute rows: every open overview asks for
its range every ``refresh_seconds`` (5 s by default), and the default range, the last hour in
30 s buckets, still aggregates every beat (7,200 with 20 runners beating every 10 s). Measured
with ``benchmarks/dashboard.py`` (20 runners, 24 h of beats; p50 on 2 shared cores), a whole
read takes 70-75 ms for the hour and 15-45 ms for 6 h or 24 h; the last few buckets take
3-4 ms. So an open tab costs the database a tenth to a twentieth of what it would, and the
viewers of one dashboard process share the cache.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tether.dashboard.history import bucket_of

if TYPE_CHECKING:
    from tether.ops.runners import HistoryPoint, RunnerRegistry

REREAD = 3


@dataclass(slots=True)
class _Kept:
    start: int  # unix seconds of the first bucket kept
    final: int  # buckets before this one were closed a while when read: kept as they are
    points: list[HistoryPoint] = field(default_factory=list)


class HistoryCache:
    def __init__(self) -> None:
        self._kept: dict[int, _Kept] = {}  # by bucket length
        self._locks: dict[int, asyncio.Lock] = {}

    async def points(
        self, registry: RunnerRegistry, since: datetime, now: datetime, bucket_s: int
    ) -> list[HistoryPoint]:
        """The history from the bucket holding ``since`` to ``now``, oldest first."""
        first = bucket_of(since, bucket_s)
        fresh_from = bucket_of(now, bucket_s) - REREAD * bucket_s
        async with self._locks.setdefault(bucket_s, asyncio.Lock()):
            kept = self._kept.get(bucket_s)
            if kept is None or kept.start > first:
                start = first  # nothing kept, or not far enough back: read the whole range
                old: list[HistoryPoint] = []
            else:
                start = max(min(kept.final, fresh_from), first)
                old = [p for p in kept.points if first <= _at(p) < start]
            new = await registry.history(datetime.fromtimestamp(start, UTC), bucket_s)
            points = old + [p for p in new if _at(p) >= start]
            self._kept[bucket_s] = _Kept(first, max(fresh_from, first), points)
        return points


def _at(point: HistoryPoint) -> int:
    return int(point.at.timestamp())
