"""An in-process source: the consumer contract's reference adapter, and for trials and tests.

Messages live in this process only; nothing survives a restart. A message handed out and
neither acked, retried nor dead-lettered within ``visibility`` seconds is handed out again,
as a broker does when its consumer died.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tether.consume import deadletter
from tether.consume.port import DeadLetter, Delivery, Failure
from tether.core.envelope import Event
from tether.core.waiting import wait_set


@dataclass
class _Message:
    id: int
    attributes: dict[str, str]
    data: bytes
    headers: dict[str, str]
    deliveries: int = 0
    due: float = 0.0
    out: bool = False


@dataclass
class _Dead:
    id: str
    message: _Message
    failure_headers: dict[str, str] = field(default_factory=dict)


class MemorySource:
    """A queue in memory with delayed redelivery and a dead-letter list."""

    def __init__(
        self, name: str = "memory", *, origin: str = "memory", visibility: float = 30.0
    ) -> None:
        self.name = name
        self.origin = origin
        self.visibility = visibility
        self.dead: list[_Dead] = []
        self.acked: list[str | None] = []
        self._messages: dict[int, _Message] = {}
        self._ids = itertools.count(1)
        self._arrived = asyncio.Event()
        self.closed = False

    def put(
        self, attributes: Mapping[str, str], data: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Enqueue a raw message (any attributes: this is how tests send undecodable ones)."""
        number = next(self._ids)
        self._messages[number] = _Message(number, dict(attributes), data, dict(headers or {}))
        self._arrived.set()

    def publish(self, event: Event) -> None:
        """Enqueue an event as a sink would write it."""
        self.put(event.cloudevent_attributes(), event.data)

    @property
    def pending(self) -> int:
        return len(self._messages)

    async def receive(self, max_messages: int, wait: float) -> Sequence[Delivery]:
        self._check_open()
        deadline = time.monotonic() + wait
        while True:
            now = time.monotonic()
            ready = [m for m in self._messages.values() if m.due <= now][:max_messages]
            if ready or now >= deadline:
                break
            self._arrived.clear()
            soonest = min((m.due for m in self._messages.values()), default=deadline)
            await wait_set(self._arrived, max(0.0, min(deadline, soonest) - now))
        out = []
        for message in ready:
            message.deliveries += 1
            message.due = time.monotonic() + self.visibility
            out.append(
                Delivery(
                    dict(message.attributes),
                    message.data,
                    message.deliveries,
                    self.origin,
                    dict(message.headers),
                    message.id,
                )
            )
        return out

    async def ack(self, delivery: Delivery) -> None:
        self._check_open()
        message = self._messages.pop(self._number(delivery), None)
        if message is not None:
            self.acked.append(message.attributes.get("id"))

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        self._check_open()
        message = self._messages.get(self._number(delivery))
        if message is not None:
            message.due = time.monotonic() + delay
            self._arrived.set()

    async def dead_letter(self, delivery: Delivery, failure: Failure) -> None:
        self._check_open()
        message = self._messages.pop(self._number(delivery), None)
        if message is not None:
            record = deadletter.failure_headers(failure, self.origin)
            self.dead.append(_Dead(str(message.id), message, record))

    async def list(self, limit: int = 100) -> Sequence[DeadLetter]:
        return [
            deadletter.read_dead_letter(d.id, d.failure_headers, d.message.attributes)
            for d in self.dead[:limit]
        ]

    async def replay(self, ids: Sequence[str] | None = None) -> int:
        chosen = [d for d in self.dead if ids is None or d.id in ids]
        for dead in chosen:
            self.dead.remove(dead)
            self.put(dead.message.attributes, dead.message.data, dead.message.headers)
        return len(chosen)

    async def close(self) -> None:
        self.closed = True

    def _number(self, delivery: Delivery) -> int:
        assert isinstance(delivery.handle, int)
        return delivery.handle

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"consumer source {self.name!r} is closed")
