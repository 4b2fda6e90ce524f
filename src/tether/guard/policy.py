"""The circuit breaker's rules, as pure functions over one record (no clock, no I/O).

``MemoryBreakerStore`` runs these functions; ``RedisBreakerStore`` runs the same rules in a
Lua script so instances sharing a Redis decide atomically. The contract suite holds both to
the same behaviour.

closed: calls pass; ``failure_threshold`` failures within a ``window_s`` window open it.
open: calls are refused until ``open_s`` has passed, then it is half-open.
half_open: up to ``half_open_max_calls`` probes pass; a success closes the circuit, a failure
opens it again. A probe that never reports back frees its slot after ``open_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    window_s: float = 60
    open_s: float = 30
    half_open_max_calls: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.failure_threshold, bool) or self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {self.failure_threshold}")
        if not self.window_s > 0:
            raise ValueError(f"window_s must be positive, got {self.window_s}")
        if not self.open_s > 0:
            raise ValueError(f"open_s must be positive, got {self.open_s}")
        if isinstance(self.half_open_max_calls, bool) or self.half_open_max_calls < 1:
            raise ValueError(
                f"half_open_max_calls must be at least 1, got {self.half_open_max_calls}"
            )


@dataclass(frozen=True, slots=True)
class Record:
    """One circuit's stored state. Times are Unix seconds."""

    state: State = "closed"
    failures: int = 0
    window_start: float = 0.0
    open_until: float = 0.0
    probes: int = 0
    probing_since: float = 0.0


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    state: State
    retry_after: float = 0.0


def current(record: Record, policy: BreakerPolicy, now: float) -> Record:
    """The record as time alone has changed it: an open circuit past ``open_until`` is
    half-open; probes that never reported are forgotten after ``open_s``."""
    if record.state == "open" and now >= record.open_until:
        return Record("half_open", probing_since=now)
    if record.state == "half_open" and now - record.probing_since >= policy.open_s:
        return replace(record, probes=0, probing_since=now)
    return record


def admit(record: Record, policy: BreakerPolicy, now: float) -> tuple[Record, Admission]:
    record = current(record, policy, now)
    if record.state == "closed":
        return record, Admission(True, "closed")
    if record.state == "open":
        return record, Admission(False, "open", record.open_until - now)
    if record.probes < policy.half_open_max_calls:
        return replace(record, probes=record.probes + 1), Admission(True, "half_open")
    retry = max(0.0, record.probing_since + policy.open_s - now)
    return record, Admission(False, "half_open", retry)


def succeed(record: Record, policy: BreakerPolicy, now: float) -> Record:
    record = current(record, policy, now)
    if record.state == "half_open":
        return Record()
    return record


def fail(record: Record, policy: BreakerPolicy, now: float) -> Record:
    record = current(record, policy, now)
    if record.state == "open":
        return record
    if record.state == "half_open":
        return Record("open", open_until=now + policy.open_s)
    if now - record.window_start >= policy.window_s:
        record = Record(window_start=now)
    failures = record.failures + 1
    if failures >= policy.failure_threshold:
        return Record("open", open_until=now + policy.open_s)
    return replace(record, failures=failures)
