"""The retry schedule of deliveries: fixed steps with jitter, as Svix and Standard Webhooks do.

It is a :class:`~tether.core.backoff.RetryPolicy`, so the one item lifecycle
(:func:`tether.core.lifecycle.decide`) and the work-item engine use it unchanged: after failed
attempt ``n`` the next one waits ``steps[n]`` (give or take ``jitter``), and the delivery is dead
after ``len(steps)`` attempts. The first step is the first attempt's own wait (0: immediately).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from tether.core.backoff import RetryPolicy
from tether.core.errors import ConfigError

DEFAULT_STEPS: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)


@dataclass(frozen=True, slots=True)
class RetrySchedule(RetryPolicy):
    """``steps[0]`` is when the first attempt runs, ``steps[n]`` the wait after attempt n.
    ``jitter`` is the fraction each wait may move either way (0.1: ±10%)."""

    steps: tuple[timedelta, ...] = DEFAULT_STEPS
    spread: float = 0.1
    max_attempts: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise ConfigError("a retry schedule needs at least one step")
        if any(s < timedelta(0) for s in self.steps):
            raise ConfigError("retry schedule steps must not be negative")
        if not 0 <= self.spread < 1:
            raise ConfigError(f"retry jitter must be in [0, 1), got {self.spread}")
        object.__setattr__(self, "max_attempts", len(self.steps))
        object.__setattr__(
            self, "base", max(min(self.steps[1:], default=timedelta(0)), timedelta(microseconds=1))
        )
        object.__setattr__(self, "cap", max(*self.steps, self.base))

    @classmethod
    def of(cls, steps: Sequence[timedelta | float], spread: float = 0.1) -> RetrySchedule:
        """From seconds or timedeltas: ``RetrySchedule.of([0, 5, 300])``."""
        return cls(
            steps=tuple(s if isinstance(s, timedelta) else timedelta(seconds=s) for s in steps),
            spread=spread,
        )

    def bound(self, attempt: int) -> timedelta:
        return self.steps[min(max(attempt, 1), len(self.steps) - 1)]

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        wait = self.bound(attempt)
        if not self.spread:
            return wait
        draw = (rng or random).uniform(-self.spread, self.spread)
        return wait * (1 + draw)


@dataclass(frozen=True, slots=True)
class FixedWait(RetryPolicy):
    """One retry after exactly ``wait`` (a ``Retry-After`` answer), with the schedule's limit."""

    wait: timedelta = timedelta(0)

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        return self.wait

    @classmethod
    def after(cls, schedule: RetryPolicy, wait: timedelta) -> FixedWait:
        return cls(
            max_attempts=schedule.max_attempts,
            base=max(wait, timedelta(microseconds=1)),
            cap=max(wait, timedelta(microseconds=1)),
            jitter=False,
            wait=wait,
        )
