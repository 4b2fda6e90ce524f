"""Retry schedules: exponential backoff with full jitter, capped, with a maximum attempt count."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from tether.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """After attempt ``n`` fails (n starts at 1) the next try waits up to ``base * 2**(n-1)``.

    Full jitter (a uniform draw from 0 to that bound, capped at ``cap``) spreads retries of
    items that failed together, so a recovering broker is not hit by one synchronized wave.
    """

    max_attempts: int = 10
    base: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(minutes=10)
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base <= timedelta(0):
            raise ConfigError(f"retry base must be positive, got {self.base}")
        if self.cap < self.base:
            raise ConfigError(f"retry cap ({self.cap}) must not be below its base ({self.base})")

    def bound(self, attempt: int) -> timedelta:
        """The longest wait after failed attempt number ``attempt``."""
        exponent = min(max(attempt - 1, 0), 62)
        seconds = min(self.cap.total_seconds(), self.base.total_seconds() * (2**exponent))
        return timedelta(seconds=seconds)

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        bound = self.bound(attempt)
        if not self.jitter:
            return bound
        draw = (rng or random).random()
        return timedelta(seconds=bound.total_seconds() * draw)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
