"""In-memory sink for tests and the demo: records what it is given and fails on request.

Tests wait for deliveries with :meth:`MemorySink.wait_for` (an asyncio condition), never by
sleeping::

    sink = MemorySink()
    sink.fail_next(2, "broker hiccup")        # the next two events fail, retryable
    sink.fail_ids({event.id}, retryable=False)
    sink.unavailable = True                   # publish raises SinkUnavailableError
    events = await sink.wait_for(10)          # the first ten accepted events
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from tether.core.envelope import Event
from tether.core.errors import SinkError, SinkUnavailableError
from tether.sinks.base import OK, Outcome, SinkFeatures

_TOLD = "sink told to fail"


@dataclass(frozen=True, slots=True)
class _Failure:
    error: str
    retryable: bool


class MemorySink:
    """Keeps every accepted event in :attr:`events` (in order, re-publishes included unless
    ``dedup=True``). Failures are checked in this order: unavailable, all, next N, by id."""

    def __init__(self, name: str = "memory", *, dedup: bool = False) -> None:
        self.name = name
        self.dedup = dedup
        self.events: list[Event] = []
        self.calls = 0
        self.unavailable = False
        self._seen: set[uuid.UUID] = set()
        self._fail_all: _Failure | None = None
        self._fail_next: list[_Failure] = []
        self._fail_ids: dict[uuid.UUID, _Failure] = {}
        self._closed = False
        self._changed = asyncio.Condition()
        self.features = SinkFeatures(
            dedups_by_id=dedup, durable=False, can_be_unavailable=True, fails_per_event=True
        )

    @property
    def ids(self) -> list[uuid.UUID]:
        return [event.id for event in self.events]

    def fail_all(self, error: str = _TOLD, *, retryable: bool = True) -> None:
        self._fail_all = _Failure(error, retryable)

    def fail_next(self, n: int, error: str = _TOLD, *, retryable: bool = True) -> None:
        self._fail_next.extend(_Failure(error, retryable) for _ in range(n))

    def fail_ids(
        self, ids: Collection[uuid.UUID], error: str = _TOLD, *, retryable: bool = True
    ) -> None:
        self._fail_ids.update({event_id: _Failure(error, retryable) for event_id in ids})

    def heal(self) -> None:
        """Forget every failure instruction and become available again."""
        self._fail_all = None
        self._fail_next.clear()
        self._fail_ids.clear()
        self.unavailable = False

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; create a new one to publish")
        self.calls += 1
        if self.unavailable:
            raise SinkUnavailableError(f"sink {self.name!r} was told to be unavailable")
        outcomes = [self._accept(event) for event in events]
        async with self._changed:
            self._changed.notify_all()
        return outcomes

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[Event]:
        """The first ``n`` accepted events, once there are that many; TimeoutError after
        ``timeout`` seconds."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.events) >= n)
        return self.events[:n]

    async def close(self) -> None:
        self._closed = True

    def _accept(self, event: Event) -> Outcome:
        failure = self._failure_for(event)
        if failure is not None:
            return Outcome.failed(failure.error, retryable=failure.retryable)
        if self.dedup and event.id in self._seen:
            return OK
        self._seen.add(event.id)
        self.events.append(event)
        return OK

    def _failure_for(self, event: Event) -> _Failure | None:
        if self._fail_all is not None:
            return self._fail_all
        if self._fail_next:
            return self._fail_next.pop(0)
        return self._fail_ids.get(event.id)
