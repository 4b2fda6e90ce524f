"""How a dead-letter copy records its failure: the same header names on every broker.

Each adapter writes :func:`failure_headers` next to the original headers (NATS headers, AMQP
headers, stream entry fields) and reads them back with :func:`read_dead_letter`, so
``tether consume dlq list`` shows the same columns whatever the broker.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from tether.consume.port import DeadLetter, Failure

KIND = "tether-dlq-kind"
REASON = "tether-dlq-reason"
DELIVERIES = "tether-dlq-deliveries"
ORIGIN = "tether-dlq-origin"
FAILED_AT = "tether-dlq-failed-at"
NAMES = (KIND, REASON, DELIVERIES, ORIGIN, FAILED_AT)
REASON_MAX = 1000
"""Characters of the reason kept: enough for an exception line, bounded for header limits."""


def clip_reason(text: str) -> str:
    """One printable line of at most ``REASON_MAX`` characters."""
    line = " ".join(text.split())
    line = "".join(c if c.isprintable() else "?" for c in line)
    return line if len(line) <= REASON_MAX else line[: REASON_MAX - 3] + "..."


def failure_headers(failure: Failure, origin: str) -> dict[str, str]:
    return {
        KIND: failure.kind,
        REASON: clip_reason(failure.reason),
        DELIVERIES: str(failure.deliveries),
        ORIGIN: origin,
        FAILED_AT: failure.failed_at.astimezone(UTC).isoformat(),
    }


def original_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of a dead-letter copy minus the failure record: what a replay sends."""
    return {k: v for k, v in headers.items() if k not in NAMES}


def read_dead_letter(
    dlq_id: str,
    headers: Mapping[str, str],
    attributes: Mapping[str, str],
    original: Mapping[str, str] | None = None,
) -> DeadLetter:
    """``headers`` carry the failure record, ``attributes`` the CloudEvents attributes and
    ``original`` the original message's headers (shown, as a replay sends them)."""
    deliveries = headers.get(DELIVERIES, "0")
    return DeadLetter(
        id=dlq_id,
        event_id=attributes.get("id"),
        type=attributes.get("type"),
        origin=headers.get(ORIGIN, "?"),
        kind=headers.get(KIND, "?"),
        reason=headers.get(REASON, ""),
        deliveries=int(deliveries) if deliveries.isdigit() else 0,
        failed_at=headers.get(FAILED_AT, ""),
        headers=dict(original or {}),
    )


def now() -> datetime:
    return datetime.now(UTC)
