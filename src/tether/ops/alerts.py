"""Dead-letter alerts: what one says, when one is due, and the channel port.

The rule is "alert on increase, reset when zero", kept per source and channel as a *level*: the
highest dead count already alerted. A count above the level is a new level and alerts once
(``threshold`` when it crosses the threshold, ``increase`` otherwise); a count at or below
it says nothing, so a queue that stays dead, or shrinks while being replayed, never alerts
again; a count of zero resets the level (and sends ``cleared`` once).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tether.core.errors import TetherError

DEFAULT_THRESHOLD = 100


class AlertDeliveryError(TetherError):
    """A channel could not deliver an alert; the monitor tries again at its next check."""


class AlertKind(enum.StrEnum):
    THRESHOLD = "threshold"  # the count crossed the threshold
    INCREASE = "increase"  # the count rose above the last level alerted
    CLEARED = "cleared"  # the count is back to zero


@dataclass(frozen=True, slots=True)
class Rule:
    threshold: int = DEFAULT_THRESHOLD
    on_increase: bool = True
    notify_cleared: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int):
            raise ValueError(f"alert threshold must be an integer, got {self.threshold!r}")
        if self.threshold < 1:
            raise ValueError(f"alert threshold must be at least 1, got {self.threshold}")

    def decide(self, count: int, level: int) -> tuple[AlertKind | None, int]:
        """The alert due for ``count`` dead items when ``level`` was alerted last, and the
        level to keep afterwards."""
        if count <= 0:
            return (AlertKind.CLEARED if level > 0 and self.notify_cleared else None), 0
        if count <= level:
            return None, level
        if level < self.threshold <= count:
            return AlertKind.THRESHOLD, count
        return (AlertKind.INCREASE if self.on_increase else None), count


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert. ``id`` is the same for every try at sending it (receivers drop repeats by
    it) and differs between alerts of one source."""

    id: str
    source: str
    kind: AlertKind
    count: int
    previous: int
    threshold: int
    at: datetime

    def summary(self) -> str:
        what = f"{self.count:,} dead in {self.source}"
        if self.kind is AlertKind.THRESHOLD:
            return f"Dead letters over threshold: {what} (threshold {self.threshold:,})"
        if self.kind is AlertKind.INCREASE:
            return f"Dead letters growing: {what} (was {self.previous:,})"
        return f"Dead letters cleared: none left in {self.source} (was {self.previous:,})"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": f"tether.deadletters.{self.kind.value}",
            "id": self.id,
            "source": self.source,
            "kind": self.kind.value,
            "count": self.count,
            "previous": self.previous,
            "threshold": self.threshold,
            "at": self.at.isoformat(),
            "summary": self.summary(),
        }

    def to_slack(self) -> dict[str, Any]:
        """``text`` and ``blocks`` for a Slack incoming webhook."""
        text = _escape(self.summary())
        fields = [
            ("Source", self.source),
            ("Dead now", f"{self.count:,}"),
            ("Before", f"{self.previous:,}"),
            ("Threshold", f"{self.threshold:,}"),
        ]
        return {
            "text": text,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": text[:150]}},
                {
                    "type": "section",
                    "fields": [
                        {"type": "mrkdwn", "text": f"*{label}*\n{_escape(value)}"}
                        for label, value in fields
                    ],
                },
                {
                    "type": "context",
                    "elements": [
                        {
                            "type": "mrkdwn",
                            "text": _escape(
                                f"{self.at.isoformat()} · replay with `tether dlq replay`"
                            ),
                        }
                    ],
                },
            ],
        }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class AlertChannel(Protocol):
    """Where alerts go. ``name`` keys the channel's own alert state, so each channel gets
    every alert once even when another one is down."""

    name: str

    async def send(self, alert: Alert) -> None:
        """Deliver ``alert`` or raise :class:`AlertDeliveryError`."""
        ...

    async def close(self) -> None: ...
