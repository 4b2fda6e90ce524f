"""Rate-limit algorithms as pure functions of (state, now): the memory store runs them as is,
the Redis Lua scripts in ``stores/redis.py`` are line-for-line the same arithmetic.

* Sliding-window counter: the count of the current fixed window plus the previous window's
  count weighted by how much of it still overlaps the sliding window. Never admits more than
  ``limit`` within one fixed window, and smooths the burst at window edges.
* GCRA: a theoretical arrival time (TAT) advancing by ``period / limit`` per request, with a
  burst of ``limit``. One number of state per key.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from tether.core.errors import ConfigError

_EPSILON = 1e-9


class Algorithm(enum.Enum):
    SLIDING_WINDOW = "sliding_window"
    GCRA = "gcra"


@dataclass(frozen=True)
class Limit:
    """``limit`` requests per ``period`` seconds, advertised under ``name``."""

    name: str
    limit: int
    period: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period <= 0:
            raise ConfigError(f"rate limit {self.name!r} needs limit >= 1 and period > 0")
        check_policy_name(self.name)


def check_policy_name(name: str) -> None:
    """A policy name goes into the RateLimit fields as an sf-string: no quotes, no backslashes."""
    if not name or '"' in name or "\\" in name:
        raise ConfigError("a rate limit name must be non-empty, without quotes or backslashes")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: Limit
    remaining: int
    reset_after: float  # seconds until the quota is whole again (sliding: the window ends)
    retry_after: float  # seconds until this request would be admitted; 0 when allowed
    policy: str = ""  # the name the RateLimit fields advertise; the limit's name when empty

    @property
    def policy_name(self) -> str:
        return self.policy or self.limit.name


@dataclass(frozen=True)
class WindowState:
    window: int
    current: int
    previous: int


def sliding_window(
    state: WindowState | None, now: float, limit: Limit, cost: int
) -> tuple[Decision, WindowState]:
    period = limit.period
    index = math.floor(now / period)
    current, previous = 0, 0
    if state is not None and state.window == index:
        current, previous = state.current, state.previous
    elif state is not None and state.window == index - 1:
        previous = state.current
    elapsed = now - index * period
    weight = (period - elapsed) / period
    estimate = previous * weight + current
    if estimate + cost <= limit.limit + _EPSILON:
        current += cost
        remaining = max(0, math.floor(limit.limit - (previous * weight + current) + _EPSILON))
        decision = Decision(True, limit, remaining, period - elapsed, 0.0)
        return decision, WindowState(index, current, previous)
    retry = _sliding_retry(current, previous, elapsed, limit, cost)
    return Decision(False, limit, 0, period - elapsed, retry), WindowState(index, current, previous)


def _sliding_retry(current: int, previous: int, elapsed: float, limit: Limit, cost: int) -> float:
    period, room = limit.period, limit.limit - cost
    if room < 0:
        return period * 2  # a request costlier than the whole quota is never admitted
    if current + cost > limit.limit:
        # Wait for the next window, then until this window's count has decayed enough.
        return (period - elapsed) + max(0.0, 1 - room / current) * period
    return max(0.0, period * (1 - (room - current) / previous) - elapsed)


def gcra(tat: float | None, now: float, limit: Limit, cost: int) -> tuple[Decision, float | None]:
    interval = limit.period / limit.limit
    base = max(tat if tat is not None else now, now)
    new_tat = base + interval * cost
    allow_at = new_tat - limit.period
    if now + _EPSILON < allow_at:
        reset = base - now
        return Decision(False, limit, 0, reset, allow_at - now), tat
    remaining = max(0, math.floor((limit.period - (new_tat - now)) / interval + _EPSILON))
    return Decision(True, limit, remaining, new_tat - now, 0.0), new_tat
