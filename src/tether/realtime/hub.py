"""This gateway's subscriptions: channel key -> subscribed sessions, and the fan-out.

A publication is encoded once per channel, JSON and WebSocket frame alike, and written to
every subscriber's socket without waking any task (``Session.push_framed``). The hub
follows each channel's (epoch, offset): a publication that skips offsets, or comes from
another epoch, means this gateway missed some, so its live subscribers are told to
resubscribe (unsubscribe code 2500) and recover the gap from history. Subscribers still
waiting for their subscribe reply buffer what arrives meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tether.realtime import protocol
from tether.realtime.backplane import Delivery, Position
from tether.realtime.channels import Channel

if TYPE_CHECKING:
    from tether.realtime.session import Session


class Sub:
    """One session's subscription; ``pending`` holds deliveries until the reply is sent."""

    __slots__ = ("channel", "pending")

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.pending: list[Delivery] | None = []


@dataclass(slots=True)
class _Entry:
    public: str
    subs: dict[Session, Sub] = field(default_factory=dict)
    epoch: str | None = None
    offset: int = 0


RESYNC = "insufficient state"


class Hub:
    def __init__(self) -> None:
        self.channels: dict[str, _Entry] = {}
        self.delivered = 0
        # Publications written (or queued) to subscribers, for the runner registry.
        self.fanned_out = 0

    def add(self, session: Session, sub: Sub) -> None:
        key = sub.channel.key
        entry = self.channels.get(key)
        if entry is None:
            entry = self.channels[key] = _Entry(sub.channel.public)
        entry.subs[session] = sub

    def remove(self, session: Session, sub: Sub) -> None:
        key = sub.channel.key
        entry = self.channels.get(key)
        if entry is not None and entry.subs.get(session) is sub:
            del entry.subs[session]
            if not entry.subs:
                del self.channels[key]

    def deliver(self, delivery: Delivery) -> None:
        entry = self.channels.get(delivery.key)
        if entry is None:
            return
        gap = False
        if delivery.offset > 0:
            if entry.epoch == delivery.epoch and delivery.offset <= entry.offset:
                return  # already delivered
            gap = entry.epoch is not None and (
                entry.epoch != delivery.epoch or delivery.offset != entry.offset + 1
            )
            entry.epoch, entry.offset = delivery.epoch, delivery.offset
        # Encoded once (JSON and the WebSocket frame) for every subscriber of the channel.
        payload = protocol.publication(
            entry.public, protocol.with_offset(delivery.body, delivery.offset)
        )
        wire = protocol.text_frame(payload)
        frame = payload.decode()
        behind: list[tuple[Session, Sub]] = []
        for session, sub in entry.subs.items():
            if sub.pending is not None:
                sub.pending.append(delivery)
            elif gap:
                behind.append((session, sub))
            else:
                session.push_framed(frame, wire)
        self.delivered += 1
        self.fanned_out += len(entry.subs) - len(behind)
        for session, sub in behind:
            session.resync(sub)

    def settle(self, session: Session, sub: Sub, top: Position) -> None:
        """After the subscribe reply (positioned at ``top``): flush what arrived meanwhile."""
        pending, sub.pending = sub.pending or [], None
        entry = self.channels.get(sub.channel.key)
        if entry is not None and entry.epoch is None:
            entry.epoch, entry.offset = top.epoch, top.offset
        last = top.offset
        for delivery in pending:
            if delivery.offset <= 0:
                session.push(_frame(sub, delivery))
            elif delivery.epoch != top.epoch or delivery.offset > last + 1:
                session.resync(sub)
                return
            elif delivery.offset == last + 1:
                session.push(_frame(sub, delivery))
                last = delivery.offset

    def resync_all(self) -> None:
        """Deliveries may have been missed (the bus was down): every live subscriber re-syncs."""
        for entry in list(self.channels.values()):
            entry.epoch = None
            for session, sub in list(entry.subs.items()):
                if sub.pending is None:
                    session.resync(sub)

    def subscribers(self) -> int:
        return sum(len(entry.subs) for entry in self.channels.values())


def _frame(sub: Sub, delivery: Delivery) -> str:
    body = protocol.with_offset(delivery.body, delivery.offset)
    return protocol.publication(sub.channel.public, body).decode()
