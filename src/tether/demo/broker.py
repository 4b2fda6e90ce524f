"""The demo's message broker: an in-memory sink that can go down and can lose acks."""

from __future__ import annotations

from collections.abc import Sequence

from tether.core.envelope import Event
from tether.core.errors import SinkUnavailableError
from tether.sinks.base import Outcome
from tether.sinks.memory import MemorySink


class DemoBroker:
    """Events it accepts land in :attr:`memory` (the consumer reads them from there).

    * ``down = True`` → every publish raises :class:`SinkUnavailableError`: the relay defers
      the events and spends none of their attempts.
    * :meth:`lose_acks` → the next events are stored but reported failed, as when an ack is
      lost on the way back: the relay retries them, the consumer sees them twice, and the
      inbox drops the repeat.
    """

    def __init__(self, name: str = "broker") -> None:
        self.name = name
        self.memory = MemorySink(name)
        self.down = False
        self.refused_calls = 0
        self._acks_to_lose = 0

    def lose_acks(self, n: int) -> None:
        self._acks_to_lose += n

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        if self.down:
            self.refused_calls += 1
            raise SinkUnavailableError("broker unreachable (simulated outage)")
        outcomes = list(await self.memory.publish(events))
        for i, outcome in enumerate(outcomes):
            if outcome.ok and self._acks_to_lose > 0:
                self._acks_to_lose -= 1
                outcomes[i] = Outcome.failed("ack lost on the way back (simulated)")
        return outcomes

    async def close(self) -> None:
        await self.memory.close()
