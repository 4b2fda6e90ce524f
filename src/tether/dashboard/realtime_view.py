"""What the dashboard shows of a real-time gateway running in the same process."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RealtimeSnapshot:
    connections: int
    users: int
    channels: list[tuple[str, int]]  # the busiest, by subscribers
    channel_count: int
    delivered: int
    stats: dict[str, int]


def realtime_snapshot(gateway: Any, top: int = 50) -> RealtimeSnapshot | None:
    """None when no gateway runs here (``tether realtime`` in another process exports its
    figures as Prometheus metrics instead)."""
    if gateway is None:
        return None
    sessions = list(gateway.sessions)
    users = {s.identity.user for s in sessions if getattr(s, "identity", None) is not None}
    entries = list(gateway.hub.channels.values())
    busiest = sorted(((e.public, len(e.subs)) for e in entries), key=lambda c: -c[1])[:top]
    return RealtimeSnapshot(
        connections=len(sessions),
        users=len(users),
        channels=busiest,
        channel_count=len(entries),
        delivered=int(gateway.hub.delivered),
        stats=dataclasses.asdict(gateway.stats),
    )
