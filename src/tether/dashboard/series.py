"""The oldest pending age over time, sampled while someone watches.

Throughput and relay lag come from the runner registry's stored history (``history.py``); the
oldest pending item's age is no runner's figure, so the overview samples it on each refresh
(no background task: the app may be mounted in another one, whose lifespan does not run ours)
and the chart puts each sample in its bucket. At most ``size`` samples are kept (24 hours at
the default 5 s refresh).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque

from tether.dashboard.queries import TableCounts


class PendingAges:
    def __init__(self, interval: float = 5.0, size: int = 17_280) -> None:
        self.interval = interval
        self.samples: deque[tuple[float, float]] = deque(maxlen=size)  # (unix s, age s)
        self._last = 0.0
        self._lock = asyncio.Lock()

    def due(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return now - self._last >= self.interval

    async def add(self, counts: list[TableCounts], now: float | None = None) -> None:
        """One sample: the oldest pending age over every table (nothing pending: 0)."""
        async with self._lock:
            at = time.time() if now is None else now
            if at - self._last < self.interval / 2:
                return
            self._last = at
            ages = [c.oldest_pending.total_seconds() for c in counts if c.oldest_pending]
            self.samples.append((at, max(ages, default=0.0)))

    def since(self, start: float) -> list[tuple[float, float]]:
        """The samples from ``start`` on, oldest first. Samples are appended in time order
        (``add`` drops one earlier than the last), so the walk stops at the first older one
        instead of reading the whole day on every chart poll."""
        recent = list(itertools.takewhile(lambda s: s[0] >= start, reversed(self.samples)))
        recent.reverse()
        return recent
