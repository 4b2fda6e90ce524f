"""Throughput from a runner's beats, computed in Python (the PostgreSQL adapter computes the same
in SQL; the contract suite holds the two to one answer)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from tether.ops.runners.model import HistoryPoint, bucket_start, is_counter

Beat = tuple[datetime, dict[str, float]]


def history(
    series: Iterable[tuple[str, Sequence[Beat]]], since: datetime, bucket_s: int
) -> list[HistoryPoint]:
    """``series``: per runner, its kind and its beats in time order, starting with its last beat
    before ``since`` (if any) so that the first increase inside the window is counted. Each
    beat's counters are compared with the runner's previous beat (a counter that beat lacked
    counts from here)."""
    increases: dict[tuple[datetime, str], dict[str, float]] = {}
    highs: dict[tuple[datetime, str], dict[str, float]] = {}
    for kind, beats in series:
        previous: dict[str, float] = {}
        for at, stats in beats:
            inside = at >= since
            key = (bucket_start(at, bucket_s), kind)
            for name, value in stats.items():
                if is_counter(name):
                    before = previous.get(name)
                    if inside:
                        # A counter's first report counts from there; one that went down was
                        # reset by a restart, so all of its new value is new.
                        step = (
                            0.0 if before is None else value - before if value >= before else value
                        )
                        rates = increases.setdefault(key, {})
                        rates[name] = rates.get(name, 0.0) + step
                elif inside:
                    gauges = highs.setdefault(key, {})
                    gauges[name] = max(gauges.get(name, value), value)
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
