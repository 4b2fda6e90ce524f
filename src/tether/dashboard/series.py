"""Throughput and lag over time for the overview's chart, sampled while someone watches.

No background task: each overview refresh takes a sample when the last one is older than the
interval (the app may be mounted in another one, whose lifespan does not run ours). A sample
reads each table's id sequence (rows written) and live count, so the rates cost nothing on big
tables; the history is what this process saw, at most ``size`` samples. Prometheus and the
Grafana board (deploy/grafana) keep the long history.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tether.dashboard.queries import TableCounts


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # unix seconds
    written: dict[str, int | None]  # last seq per table
    pending: dict[str, int | None]  # exact live count, None when only estimated
    lag: dict[str, float | None]  # oldest pending age, seconds


def _seconds(age: timedelta | None) -> float | None:
    return None if age is None else age.total_seconds()


class Series:
    def __init__(self, interval: float = 5.0, size: int = 360) -> None:
        self.interval = interval
        self.samples: deque[Sample] = deque(maxlen=size)
        self._lock = asyncio.Lock()

    def due(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return not self.samples or now - self.samples[-1].at >= self.interval

    async def add(self, counts: list[TableCounts], now: float | None = None) -> None:
        async with self._lock:
            at = time.time() if now is None else now
            if self.samples and at - self.samples[-1].at < self.interval / 2:
                return
            self.samples.append(
                Sample(
                    at,
                    {c.name: c.last_seq for c in counts},
                    {c.name: c.pending.value if c.pending.exact else None for c in counts},
                    {c.name: _seconds(c.oldest_pending) for c in counts},
                )
            )

    def chart(self) -> dict[str, Any]:
        """uPlot's data layout: x (unix seconds) then one array per series; the rates of each
        step between two samples (written/s; done/s when both live counts are exact)."""
        xs: list[float] = []
        lines: dict[str, list[float | None]] = {}
        pairs = list(zip(self.samples, list(self.samples)[1:], strict=False))
        tables = sorted({t for s in self.samples for t in s.written})
        for t in tables:
            lines[f"{t} written/s"] = []
            lines[f"{t} done/s"] = []
            lines[f"{t} lag s"] = []
        for a, b in pairs:
            dt = b.at - a.at
            if dt <= 0:
                continue
            xs.append(round(b.at, 3))
            for t in tables:
                w0, w1 = a.written.get(t), b.written.get(t)
                rate = None if w0 is None or w1 is None else max(w1 - w0, 0) / dt
                p0, p1 = a.pending.get(t), b.pending.get(t)
                done = (
                    None
                    if rate is None or p0 is None or p1 is None
                    else max(rate - (p1 - p0) / dt, 0.0)
                )
                lines[f"{t} written/s"].append(None if rate is None else round(rate, 2))
                lines[f"{t} done/s"].append(None if done is None else round(done, 2))
                lag = b.lag.get(t)
                lines[f"{t} lag s"].append(None if lag is None else round(lag, 1))
        return {"x": xs, "series": lines}
