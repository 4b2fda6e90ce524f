"""The recovered-jobs alert through the dead-letter monitor's channels (Slack, signed webhook).

When a day's stale-job recoveries pass the threshold, every channel gets one alert that day,
however many workers see it: the level is kept in the monitor's alert state
(``tether_alert_state`` on PostgreSQL, one row per day and channel, held ``FOR UPDATE SKIP
LOCKED`` while sending), so a second worker finds the day already alerted. A channel that is
down raises; the worker tries again later with the same alert id (receivers drop repeats).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from tether.ops.alerts import Alert, AlertChannel, AlertDeliveryError, AlertKind
from tether.ops.alerts_state import AlertState

log = logging.getLogger("tether.jobs.alerts")

SOURCE = "jobs-recovered"


@dataclass(frozen=True, slots=True)
class RecoveryAlert(Alert):
    """An :class:`~tether.ops.alerts.Alert` about recovered jobs (a channel sends either)."""

    day: date = date.min

    def summary(self) -> str:
        return (
            f"Jobs recovered from stale state: {self.count:,} on {self.day.isoformat()} "
            f"(threshold {self.threshold:,}): workers are dying or hanging"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "tether.jobs.recovered",
            "id": self.id,
            "source": self.source,
            "kind": self.kind.value,
            "day": self.day.isoformat(),
            "count": self.count,
            "threshold": self.threshold,
            "at": self.at.isoformat(),
            "summary": self.summary(),
        }

    def to_slack(self) -> dict[str, Any]:
        text = _escape(self.summary())
        fields = [
            ("Day", self.day.isoformat()),
            ("Recovered", f"{self.count:,}"),
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
                                f"{self.at.isoformat()} · see `tether jobs recoveries` and "
                                "the workers' logs"
                            ),
                        }
                    ],
                },
            ],
        }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class RecoveryAlerts:
    """Sends the day's recovery alert to every channel once (see the module doc)."""

    def __init__(self, channels: Sequence[AlertChannel], state: AlertState) -> None:
        self.channels = list(channels)
        self._state = state

    async def send(self, day: date, count: int, threshold: int) -> bool:
        """True when every channel has the day's alert (now or from an earlier send);
        False when one failed or another worker is sending it (try again later)."""
        done = True
        for channel in self.channels:
            try:
                async with self._state.hold(f"{SOURCE}.{day.isoformat()}", channel.name) as slot:
                    if slot is None:  # another worker is sending it right now
                        done = False
                        continue
                    if slot.level > 0:
                        continue  # already alerted today
                    await channel.send(
                        RecoveryAlert(
                            id=f"tether-jobs-recovered.{day.isoformat()}.{channel.name}",
                            source=SOURCE,
                            kind=AlertKind.THRESHOLD,
                            count=count,
                            previous=0,
                            threshold=threshold,
                            at=datetime.now(UTC),
                            day=day,
                        )
                    )
                    slot.save(count)
            except AlertDeliveryError as exc:
                done = False
                log.warning("recovered-jobs alert not delivered (tried again later): %s", exc)
        return done
