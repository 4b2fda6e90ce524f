"""Where breaker state lives: the port, and the in-process adapter."""

from __future__ import annotations

from collections.abc import Sequence
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

    async def state(self, name: str, policy: BreakerPolicy, now: float) -> State:
        """The state at ``now``, read only: nothing is written (not even what time changed)."""
        ...


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

    async def records(self, names: Sequence[str]) -> dict[str, Record | None]:
        """Stored records as they are (:class:`tether.guard.inspect.BreakerInspector`)."""
        return {name: self._records.get(name) for name in names}

    async def reset(self, name: str) -> bool:
        return self._records.pop(name, None) is not None

    def _get(self, name: str) -> Record:
        return self._records.get(name) or Record()
