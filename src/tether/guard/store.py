"""Where breaker state lives: the port, and the in-process adapter."""

from __future__ import annotations

from typing import Protocol

from tether.guard.policy import (
    Admission,
    BreakerPolicy,
    Record,
    State,
    admit,
    current,
    fail,
    succeed,
)


class BreakerStore(Protocol):
    """Breaker state by guard name. Every method is one atomic step at time ``now``."""

    async def admit(self, name: str, policy: BreakerPolicy, now: float) -> Admission: ...

    async def success(self, name: str, policy: BreakerPolicy, now: float) -> State: ...

    async def failure(self, name: str, policy: BreakerPolicy, now: float) -> State: ...

    async def state(self, name: str, policy: BreakerPolicy, now: float) -> State: ...


class MemoryBreakerStore:
    """State in this process; share one instance between guards to share their circuits.

    Each method runs without awaiting, so it is atomic within the event loop.
    """

    def __init__(self) -> None:
        self._records: dict[str, Record] = {}

    async def admit(self, name: str, policy: BreakerPolicy, now: float) -> Admission:
        self._records[name], admission = admit(self._get(name), policy, now)
        return admission

    async def success(self, name: str, policy: BreakerPolicy, now: float) -> State:
        record = self._records[name] = succeed(self._get(name), policy, now)
        return record.state

    async def failure(self, name: str, policy: BreakerPolicy, now: float) -> State:
        record = self._records[name] = fail(self._get(name), policy, now)
        return record.state

    async def state(self, name: str, policy: BreakerPolicy, now: float) -> State:
        return current(self._get(name), policy, now).state

    def _get(self, name: str) -> Record:
        return self._records.get(name) or Record()
