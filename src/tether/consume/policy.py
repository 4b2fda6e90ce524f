"""When a failed message is handed out again, and when it is dead-lettered instead."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from tether.core.errors import ConfigError

DEFAULT_BACKOFF = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(frozen=True, slots=True)
class RedeliveryPolicy:
    """``max_deliveries`` hand-outs in all; after the n-th fails, wait ``backoff[n-1]`` seconds
    (the last value repeats when the list is shorter), spread by ``jitter`` (0.1 = plus or minus
    10 %) so messages that failed together do not come back together.

    The default reads as most teams configure their brokers: 5 deliveries, 10 s then 30 s, 60 s,
    120 s between them, then the dead-letter destination.
    """

    backoff: Sequence[float] = DEFAULT_BACKOFF
    max_deliveries: int = 5
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.max_deliveries, bool) or self.max_deliveries < 1:
            raise ConfigError(f"max_deliveries must be at least 1, got {self.max_deliveries!r}")
        if not self.backoff:
            raise ConfigError("backoff must list at least one delay in seconds")
        for delay in self.backoff:
            if not 0 <= delay <= 86_400:
                raise ConfigError(f"backoff delay {delay!r} must be 0 to 86400 seconds")
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"jitter must be at least 0 and below 1, got {self.jitter!r}")
        object.__setattr__(self, "backoff", tuple(float(d) for d in self.backoff))

    def exhausted(self, deliveries: int) -> bool:
        """True when a message that failed on hand-out number ``deliveries`` is dead-lettered."""
        return deliveries >= self.max_deliveries

    def delay(self, deliveries: int, rng: random.Random | None = None) -> float:
        """Seconds before hand-out number ``deliveries + 1``."""
        base = self.backoff[min(max(deliveries, 1), len(self.backoff)) - 1]
        if not self.jitter:
            return base
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1 + spread))


def parse_backoff(text: str) -> tuple[float, ...]:
    """``"10,30,60"`` or ``"10s,5m"`` as seconds, for CLI flags and settings."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    delays: list[float] = []
    for part in text.split(","):
        item = part.strip().lower()
        if not item:
            raise ConfigError(f"backoff {text!r} has an empty item: write e.g. 10,30,60 or 10s,5m")
        unit = next((u for u in ("ms", "s", "m", "h") if item.endswith(u)), "")
        number = item[: len(item) - len(unit)] if unit else item
        try:
            value = float(number) * units.get(unit, 1.0)
        except ValueError:
            raise ConfigError(
                f"backoff item {part.strip()!r} is not a duration: write e.g. 10, 10s, 5m, 250ms"
            ) from None
        delays.append(value)
    return tuple(delays)
