"""An in-process backplane: for tests, the demo and a single gateway without Redis.

Several gateways in one process may share one instance (each ``start`` adds a listener).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from tether.realtime.backplane import (
    BackplaneUnavailable,
    Delivery,
    OnDelivery,
    OnResync,
    Position,
    Recovery,
    decide,
)


@dataclass
class _History:
    epoch: str
    offset: int = 0
    entries: deque[tuple[int, bytes]] = field(default_factory=deque)


class MemoryBackplane:
    def __init__(self, history_size: int = 1000) -> None:
        if history_size < 1:
            raise ValueError("history_size must be >= 1")
        self.history_size = history_size
        self.unavailable = False  # tests: behave like a backplane whose server is down
        self._channels: dict[str, _History] = {}
        self._listeners: list[tuple[OnDelivery, OnResync]] = []

    async def start(self, on_delivery: OnDelivery, on_resync: OnResync) -> None:
        self._listeners.append((on_delivery, on_resync))

    async def publish(self, key: str, body: bytes) -> Position:
        self._check()
        history = self._history(key)
        history.offset += 1
        history.entries.append((history.offset, body))
        while len(history.entries) > self.history_size:
            history.entries.popleft()
        delivery = Delivery(key, history.epoch, history.offset, body)
        for on_delivery, _ in list(self._listeners):
            on_delivery(delivery)
        return Position(history.epoch, history.offset)

    async def publish_many(self, items: Sequence[tuple[str, bytes]]) -> list[Position]:
        return [await self.publish(key, body) for key, body in items]

    async def position(self, key: str) -> Position:
        self._check()
        history = self._history(key)
        return Position(history.epoch, history.offset)

    async def recover(self, key: str, since: Position) -> Recovery:
        self._check()
        history = self._history(key)
        return decide(Position(history.epoch, history.offset), since, list(history.entries))

    def forget(self, key: str) -> None:
        """Lose a channel's history, as a restarted server would (tests: a new epoch)."""
        self._channels.pop(key, None)

    def resync(self) -> None:
        """Tell every gateway it may have missed deliveries (tests: after an outage)."""
        for _, on_resync in list(self._listeners):
            on_resync()

    async def close(self) -> None:
        self._listeners.clear()

    def _history(self, key: str) -> _History:
        found = self._channels.get(key)
        if found is None:
            found = self._channels[key] = _History(uuid.uuid4().hex[:12])
        return found

    def _check(self) -> None:
        if self.unavailable:
            raise BackplaneUnavailable("the memory backplane was told to be unavailable")
