"""The backplane port: channel history with offsets and epochs, and fan-out between gateways.

Contract (``tests/contract/realtime`` runs it against every adapter):

* ``publish(key, body)`` appends to the channel's history and returns its position: the
  offset grows by one per publication of that channel, the epoch names the history's
  lifetime (it changes when the history is lost, e.g. a Redis restart without persistence).
  Every started gateway then receives a :class:`Delivery` for it, in offset order per channel.
* ``recover(key, since)`` returns every publication after ``since`` in order, or
  ``recovered=False`` with none when that is impossible (another epoch, or trimmed out of the
  bounded history): never a partial replay.
* ``position(key)`` is the current top; a channel without history gets an epoch there, so a
  client positioned before the first publication recovers it.
* While the adapter cannot reach its server it raises :class:`BackplaneUnavailable`; when
  its subscription comes back it calls ``on_resync`` because deliveries may have been missed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class BackplaneUnavailable(Exception):
    """The backplane's server cannot be reached."""


@dataclass(frozen=True, slots=True)
class Position:
    epoch: str
    offset: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One publication reaching a gateway. ``body`` is the publication object, no offset."""

    key: str
    epoch: str
    offset: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Recovery:
    position: Position
    recovered: bool
    publications: list[tuple[int, bytes]] = field(default_factory=list)


OnDelivery = Callable[[Delivery], None]
OnResync = Callable[[], None]


class Backplane(Protocol):
    async def start(self, on_delivery: OnDelivery, on_resync: OnResync) -> None: ...
    async def publish(self, key: str, body: bytes) -> Position: ...
    async def publish_many(self, items: Sequence[tuple[str, bytes]]) -> list[Position]: ...
    async def position(self, key: str) -> Position: ...
    async def recover(self, key: str, since: Position) -> Recovery: ...
    async def close(self) -> None: ...


def decide(top: Position, since: Position, entries: Sequence[tuple[int, bytes]]) -> Recovery:
    """The whole gap ``since``..``top`` from ``entries`` (offset order), or not recovered."""
    if since.epoch != top.epoch or since.offset > top.offset or since.offset < 0:
        return Recovery(top, recovered=False)
    missed = [entry for entry in entries if since.offset < entry[0] <= top.offset]
    if len(missed) != top.offset - since.offset:
        return Recovery(top, recovered=False)  # trimmed: a partial replay is never given
    if missed and (missed[0][0] != since.offset + 1 or missed[-1][0] != top.offset):
        return Recovery(top, recovered=False)
    return Recovery(top, recovered=True, publications=missed)
