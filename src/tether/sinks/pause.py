"""Pausing a sink while its broker is unreachable, for anything that publishes to sinks.

A sink that raises :class:`~tether.core.errors.SinkUnavailableError` is paused; each outage in
a row doubles the pause (250 ms up to 2 s) and the first publish that goes through ends the
run. Items meant for a paused sink are deferred: they wait without spending an attempt, and
:meth:`SinkPauses.wait` says how long. The relay uses it; a worker-based dispatcher can too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from tether.core.backoff import RetryPolicy

# A paused sink is probed again at most 2 s later: deferring a batch costs one UPDATE, while a
# longer pause becomes delivery lag once the broker is back.
OUTAGE = RetryPolicy(
    max_attempts=1_000_000, base=timedelta(milliseconds=250), cap=timedelta(seconds=2)
)
# The shortest deferral: an item is not offered again within the same few polls.
MIN_WAIT = timedelta(milliseconds=50)


class SinkPauses:
    """Which sinks are paused, until when (on a monotonic clock), and after how many outages."""

    def __init__(
        self, policy: RetryPolicy = OUTAGE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._until: dict[str, float] = {}
        self._outages: dict[str, int] = {}

    def paused(self, name: str) -> bool:
        return self._until.get(name, 0.0) > self._clock()

    def pause(self, name: str) -> timedelta:
        """Record an outage of ``name``; returns how long it is paused."""
        outages = self._outages.get(name, 0) + 1
        self._outages[name] = outages
        pause = self._policy.bound(outages)
        self._until[name] = self._clock() + pause.total_seconds()
        return pause

    def resume(self, name: str) -> None:
        """``name`` took a publish: its outage is over."""
        self._outages.pop(name, None)
        self._until.pop(name, None)

    def wait(self, names: Iterable[str]) -> timedelta:
        """How long items for ``names`` should be deferred: until the first of those sinks may
        be tried again, and at least :data:`MIN_WAIT`."""
        now = self._clock()
        soonest = min((self._until.get(n, now) - now for n in names), default=0.0)
        return max(MIN_WAIT, timedelta(seconds=soonest))

    def clear(self) -> None:
        """Forget every pause (a sink known to be back, or a test)."""
        self._until.clear()
        self._outages.clear()
