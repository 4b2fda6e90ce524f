"""A sink whose outcomes the test scripts, for driving the relay through every path."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from tether.core.envelope import Event
from tether.core.errors import SinkUnavailableError
from tether.sinks.base import OK, Outcome


class ScriptedSink:
    def __init__(self, name: str = "scripted") -> None:
        self.name = name
        self.received: list[Event] = []
        self.calls: list[list[Event]] = []
        self.fail: Callable[[Event], Outcome | None] = lambda e: None
        self.raise_for: Callable[[Event], bool] = lambda e: False
        self.unavailable = False
        self.arrived = asyncio.Condition()

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        self.calls.append(list(events))
        if self.unavailable:
            raise SinkUnavailableError(f"{self.name} is down")
        if any(self.raise_for(e) for e in events):
            raise RuntimeError("poison event")
        outcomes = []
        for e in events:
            failure = self.fail(e)
            if failure is None:
                self.received.append(e)
            outcomes.append(failure or OK)
        async with self.arrived:
            self.arrived.notify_all()
        return outcomes

    async def close(self) -> None:
        pass
