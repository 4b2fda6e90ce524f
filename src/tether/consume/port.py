"""The consumer port: what a broker adapter does for :class:`tether.consume.Consumer`.

A *source* hands out deliveries and carries out the runner's verdict on each one. The runner
(:mod:`tether.consume.runner`) decides; the adapter only speaks its broker's protocol:

* ``receive`` returns up to ``max_messages`` deliveries, waiting at most ``wait`` seconds when
  none is ready (an empty list is fine). Retries whose delay has passed and messages a dead
  consumer left behind are handed out here too, with ``deliveries`` counting every hand-out.
* ``ack`` settles a message for good: the broker never hands it out again.
* ``retry_later`` hands the message out again no sooner than ``delay`` seconds from now, with
  ``deliveries`` one higher. Nothing else about it changes.
* ``dead_letter`` moves the message to the source's dead-letter destination (subject, exchange,
  stream) with its body, its original headers and the :class:`Failure`, then settles the
  original: the copy is written (and confirmed) before the original is settled, so a crash in
  between leaves a duplicate in the dead-letter destination, never a loss.
* A broker that cannot be reached makes these methods raise
  :class:`~tether.core.errors.BrokerUnavailableError`; the runner waits and calls again, and
  the adapter reconnects by itself. A message whose verdict was not carried out is simply
  handed out again later (at least once), and the inbox keeps the handler from running twice.

``tests/contract/test_consumer_contract.py`` holds every adapter to this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

FailureKind = Literal["handler", "undecodable"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the broker handed it to this consumer."""

    attributes: Mapping[str, str]
    """The CloudEvents attributes the sink wrote (``id``, ``type``, ``topic``...), decoded to
    plain strings. Empty when the message carries none (it is then undecodable)."""
    data: bytes
    """The body: the event's JSON payload."""
    deliveries: int
    """How many times the broker has handed this message out, this time included (>= 1)."""
    origin: str
    """Where it came from (subject, queue, stream): where a replay puts it back."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """The transport headers as received, copied onto the dead-letter message."""
    handle: object = None
    """The adapter's own reference to the message (a nats Msg, a delivery tag, an entry id)."""

    @property
    def event_id(self) -> str | None:
        return self.attributes.get("id")

    @property
    def partition_key(self) -> str | None:
        return self.attributes.get("partitionkey")


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a message was dead-lettered; written onto the dead-letter copy."""

    kind: FailureKind
    reason: str
    """``"ValueError: card declined"`` or ``"payload is not JSON: ..."``: one line, clipped."""
    deliveries: int
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message in a dead-letter destination, as ``tether consume dlq list`` shows it."""

    id: str
    """The dead-letter destination's own id for it (stream sequence, entry id, message id)."""
    event_id: str | None
    type: str | None
    origin: str
    kind: str
    reason: str
    deliveries: int
    failed_at: str
    headers: Mapping[str, str] = field(default_factory=dict)
    """The original message's headers as a replay sends them (the failure record left out),
    values as text."""


@runtime_checkable
class ConsumerSource(Protocol):
    """A broker adapter: one consumer (group / durable / queue) on one origin."""

    name: str
    """Names the consumer in logs, metrics and inbox rows (e.g. ``billing``)."""

    async def receive(self, max_messages: int, wait: float) -> Sequence[Delivery]: ...

    async def ack(self, delivery: Delivery) -> None: ...

    async def retry_later(self, delivery: Delivery, delay: float) -> None: ...

    async def dead_letter(self, delivery: Delivery, failure: Failure) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class DeadLetterBox(Protocol):
    """A dead-letter destination, for inspection and replay."""

    async def list(self, limit: int = 100) -> Sequence[DeadLetter]: ...

    async def replay(self, ids: Sequence[str] | None = None) -> int:
        """Put these dead letters (all when ``ids`` is None) back on their origin, with the
        delivery count starting again at 1, and remove them from the dead-letter destination.
        Returns how many were replayed."""
        ...

    async def close(self) -> None: ...
