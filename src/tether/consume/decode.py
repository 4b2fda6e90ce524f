"""A delivery back into an :class:`~tether.core.envelope.Event`, or a reason it cannot be one.

Every field is checked with the same rules as :func:`~tether.core.envelope.make_event`, so a
handler only ever sees an event a producer could have written. The payload bytes are passed on
as received (only checked to be JSON), never re-encoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import orjson

from tether.core.envelope import Event, make_event
from tether.core.errors import EventValidationError
from tether.core.ids import parse_id

MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
"""Brokers bound message size themselves; this only keeps a rogue message from being decoded
without limit."""


class UndecodableError(ValueError):
    """The message is not a Tether event; its text says why."""


def event_from(attributes: Mapping[str, str], data: bytes) -> Event:
    """The event a delivery carries; :class:`UndecodableError` names what is wrong."""
    for name in ("id", "type"):
        if not attributes.get(name):
            raise UndecodableError(f"the message has no CloudEvents {name!r} attribute")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise UndecodableError(f"payload is {len(data)} bytes, over {MAX_PAYLOAD_BYTES}")
    try:
        orjson.loads(data)  # checked here so the reason reads the same on every path
    except orjson.JSONDecodeError as exc:
        raise UndecodableError(f"payload is not JSON: {exc}") from None
    try:
        return make_event(
            attributes["type"],
            data,  # encoded JSON is kept as is: no decode and re-encode per message
            id=parse_id(attributes["id"]),
            topic=attributes.get("topic"),
            version=_version(attributes.get("eventversion", "1")),
            tenant_id=attributes.get("tenantid"),
            aggregate_type=attributes.get("aggregatetype"),
            aggregate_id=attributes.get("aggregateid"),
            partition_key=attributes.get("partitionkey"),
            source=attributes.get("source") or "tether",
            user_id=attributes.get("userid"),
            correlation_id=attributes.get("correlationid"),
            causation_id=attributes.get("causationid"),
            traceparent=attributes.get("traceparent"),
            created_at=_time(attributes.get("time")),
            max_payload_bytes=MAX_PAYLOAD_BYTES,
        )
    except EventValidationError as exc:
        raise UndecodableError(str(exc)) from None


def _version(text: str) -> int:
    if not text.isdigit():
        raise UndecodableError(f"eventversion {text[:40]!r} is not a positive integer")
    return int(text)


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UndecodableError(f"time {text[:60]!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        raise UndecodableError(f"time {text[:60]!r} has no time zone")
    return parsed
