"""Per-endpoint admission in one dispatcher process: concurrency, rate, circuit breaker.

A delivery whose endpoint is at its concurrency or rate limit, or whose breaker is open, is
*deferred* (back to pending, no attempt spent) instead of waiting in memory: a slow or dead
endpoint then holds only its own slots, never the dispatcher's, and cannot starve the others.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tether.webhooks.model import Endpoint

MIN_BUSY_WAIT = 0.05
MAX_BUSY_WAIT = 5.0


def breaker_name(endpoint_id: uuid.UUID) -> str:
    """The circuit breaker's name for an endpoint: the dispatchers' guards decide under it
    and the dashboard reads and resets it (in a shared store, the key's suffix)."""
    return f"webhook:{endpoint_id}"


@dataclass(slots=True)
class TokenBucket:
    """``rate`` requests per second with a burst of ``max(1, rate)``."""

    rate: float
    tokens: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    @property
    def burst(self) -> float:
        return max(1.0, self.rate)

    def take(self) -> float:
        """0 when a request may go now (a token is taken); else the seconds until one may."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass(slots=True)
class Gate:
    endpoint_id: uuid.UUID
    guard: Any
    concurrency: int
    bucket: TokenBucket | None
    in_flight: int = 0
    latency: float = 0.1  # a moving average of answer times, for the busy wait
    failing: bool = False

    def configure(self, endpoint: Endpoint) -> None:
        s = endpoint.settings
        self.concurrency = s.concurrency
        if s.rate_limit is None:
            self.bucket = None
        elif self.bucket is None or self.bucket.rate != s.rate_limit:
            self.bucket = TokenBucket(s.rate_limit)
        self.failing = self.failing or endpoint.failing_since is not None

    def admit(self) -> float:
        """0 and a slot taken, or how long to defer the delivery."""
        if self.in_flight >= self.concurrency:
            # About when a slot frees up: one answer time, bounded.
            return min(max(self.latency, MIN_BUSY_WAIT), MAX_BUSY_WAIT)
        if self.bucket is not None:
            wait = self.bucket.take()
            if wait:
                return wait
        self.in_flight += 1
        return 0.0

    def release(self, seconds: float | None = None) -> None:
        self.in_flight -= 1
        if seconds is not None:
            self.latency = 0.8 * self.latency + 0.2 * seconds


class Gates:
    """One gate per endpoint seen by this process; the breaker comes from ``make_guard``."""

    def __init__(self, make_guard: Any) -> None:
        self._make_guard = make_guard
        self._gates: dict[uuid.UUID, Gate] = {}

    def for_endpoint(self, endpoint: Endpoint) -> Gate:
        gate = self._gates.get(endpoint.id)
        if gate is None:
            gate = Gate(endpoint.id, self._make_guard(endpoint.id), 1, None)
            self._gates[endpoint.id] = gate
        gate.configure(endpoint)
        return gate
