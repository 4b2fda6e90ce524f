"""Throughput from a runner's beats, computed in Python (the PostgreSQL adapter computes the same
in SQL; the contract suite holds the two to one answer)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from tether.ops.runners.model import HistoryPoint, bucket_start, is_counter

Beat = tuple[datetime, dict[str, float]]


def steps(
    before: Mapping[str, float] | None, after: Mapping[str, float]
) -> tuple[dict[str, float], dict[str, float]]:
    """One beat's counter increases since the runner's previous beat (``before``), and its
    gauges. A counter's first report counts from there; one that went down was reset by a
    restart, so all of its new value is new."""
    counters: dict[str, float] = {}
    gauges: dict[str, float] = {}
    for name, value in after.items():
        if is_counter(name):
            prior = None if before is None else before.get(name)
            counters[name] = 0.0 if prior is None else value - prior if value >= prior else value
        else:
            gauges[name] = value
    return counters, gauges


def history(
    series: Iterable[tuple[str, Sequence[Beat]]], since: datetime, bucket_s: int
) -> list[HistoryPoint]:
    """``series``: per runner, its kind and its beats in time order, starting with its last beat
    before ``since`` (if any) so that the first increase inside the window is counted. Each
    beat's counters are compared with the runner's previous beat."""
    increases: dict[tuple[datetime, str], dict[str, float]] = {}
    highs: dict[tuple[datetime, str], dict[str, float]] = {}
    for kind, beats in series:
        previous: dict[str, float] | None = None
        for at, stats in beats:
            if at >= since:
                key = (bucket_start(at, bucket_s), kind)
                counters, gauges = steps(previous, stats)
                if counters:
                    rates = increases.setdefault(key, {})
                    for name, step in counters.items():
                        rates[name] = rates.get(name, 0.0) + step
                if gauges:
                    high = highs.setdefault(key, {})
                    for name, value in gauges.items():
                        high[name] = max(high.get(name, value), value)
            previous = stats
    # A bucket shows where some runner of the kind reported a stat (as in SQL, where a beat
    # without stats yields no row).
    return [
        HistoryPoint(
            at=at,
            kind=kind,
            rates={n: t / bucket_s for n, t in sorted(increases.get((at, kind), {}).items())},
            gauges=dict(sorted(highs.get((at, kind), {}).items())),
        )
        for at, kind in sorted(increases.keys() | highs.keys())
    ]
