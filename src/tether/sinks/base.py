"""The sink port: publish a batch of events, report one outcome per event.

Contract every adapter keeps (and ``tests/contract/test_sink_contract.py`` checks):

* ``publish(events)`` returns exactly one :class:`Outcome` per event, in the same order.
* An outcome of ``OK`` means the target has durably accepted the event (broker ack).
* Publishing the same event id twice is safe: targets that can de-duplicate do so by event id
  (JetStream ``Nats-Msg-Id``, AMQP message-id, ``webhook-id``), the rest deliver it again.
* A failure of one event is reported in its outcome and costs only that event an attempt.
* If the whole target is unreachable the sink raises :class:`SinkUnavailableError`: the relay
  then waits and retries without spending any event's attempts.
* An event the target asked to receive later (a ``Retry-After``, a pace the target sets) is
  answered :meth:`Outcome.deferred`: the relay tries it again after that wait without spending
  an attempt, and without pausing the sink for the other events.
* Events passed in one call never share a partition key, so a sink need not order within a
  call; calls for one key are made one after the other.
* ``close()`` releases connections; ``publish`` after ``close`` raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tether.core.envelope import Event


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of publishing one event to one sink."""

    ok: bool
    error: str | None = None
    retryable: bool = True
    defer_s: float | None = None
    """Set when the event was not sent on purpose: try again after this many seconds."""

    @staticmethod
    def failed(error: str, *, retryable: bool = True) -> Outcome:
        return Outcome(ok=False, error=error, retryable=retryable)

    @staticmethod
    def deferred(error: str, after_s: float) -> Outcome:
        """Not sent now (the target asked to wait): no attempt spent, tried after ``after_s``."""
        if not after_s >= 0:  # also refuses NaN
            raise ValueError(f"a deferral needs a wait of 0 seconds or more, got {after_s}")
        return Outcome(ok=False, error=error, defer_s=after_s)


OK = Outcome(ok=True)


@dataclass(frozen=True, slots=True)
class SinkFeatures:
    """What an adapter can do; the contract suite switches its cases on these flags."""

    dedups_by_id: bool = False
    """Re-publishing an event id within the target's window stores it once."""
    durable: bool = False
    """An ``OK`` outcome means the event survives a restart of the target."""
    can_be_unavailable: bool = False
    """The target can be down as a whole, and ``publish`` then raises SinkUnavailableError."""
    fails_per_event: bool = False
    """The target can refuse single events of a batch while accepting the rest."""


@runtime_checkable
class Sink(Protocol):
    """A delivery target. ``name`` is what routing rules refer to."""

    name: str

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]: ...

    async def close(self) -> None: ...
