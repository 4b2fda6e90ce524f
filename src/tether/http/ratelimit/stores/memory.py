"""In-process rate-limit state, for single-process apps and tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from tether.http.ratelimit import algorithms
from tether.http.ratelimit.algorithms import Algorithm, Decision, Limit, WindowState


class MemoryRateLimitStore:
    """No awaits inside ``hit``, so each decision is atomic on its event loop."""

    in_process = True  # the limiter needs no timeout guard around it

    def __init__(self, clock: Callable[[], float] = time.time, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._windows: dict[str, WindowState] = {}
        self._tats: dict[str, float] = {}

    async def hit(self, key: str, limit: Limit, algorithm: Algorithm, cost: int = 1) -> Decision:
        now = self._clock()
        if algorithm is Algorithm.GCRA:
            decision, tat = algorithms.gcra(self._tats.get(key), now, limit, cost)
            if tat is not None:
                self._bound(self._tats, key)
                self._tats[key] = tat
            return decision
        decision, state = algorithms.sliding_window(self._windows.get(key), now, limit, cost)
        self._bound(self._windows, key)
        self._windows[key] = state
        return decision

    def _bound(self, table: dict[str, WindowState] | dict[str, float], key: str) -> None:
        # Bounded: a client spraying keys evicts the oldest keys instead of growing memory.
        if key not in table and len(table) >= self._max_keys:
            del table[next(iter(table))]
