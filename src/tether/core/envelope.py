"""The event envelope: what `add_event` stores and what every sink receives.

Attributes follow CloudEvents 1.0 (id, source, type, subject, time, datacontenttype) plus
extension attributes for tenant, aggregate, event version, correlation/causation and W3C
traceparent. The payload is kept as encoded JSON bytes end to end, so the relay never decodes
and re-encodes it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

from tether.core import jsonutil
from tether.core.errors import EventValidationError
from tether.core.ids import new_id

DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024
DEFAULT_SOURCE = "tether"

# Names travel into broker subjects, headers and SQL filters: keep them to a safe alphabet.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-/]{0,254}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_FREE_TEXT_MAX = 255


@dataclass(frozen=True, slots=True)
class Event:
    """One event, immutable. Build it with :func:`make_event`, which validates every field."""

    id: uuid.UUID
    type: str
    data: bytes
    topic: str
    version: int = 1
    tenant_id: str | None = None
    aggregate_type: str | None = None
    aggregate_id: str | None = None
    partition_key: str | None = None
    source: str = DEFAULT_SOURCE
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    user_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None
    idempotency_key: str | None = None

    @property
    def payload(self) -> Any:
        """The decoded payload."""
        return jsonutil.loads(self.data)

    @property
    def subject(self) -> str | None:
        """The CloudEvents subject: the aggregate this event is about."""
        if self.aggregate_id is None:
            return None
        return (
            f"{self.aggregate_type}/{self.aggregate_id}"
            if self.aggregate_type
            else self.aggregate_id
        )

    def cloudevent_attributes(self) -> dict[str, str]:
        """CloudEvents 1.0 context attributes and Tether's extensions, all as strings."""
        attrs = {
            "specversion": "1.0",
            "id": str(self.id),
            "source": self.source,
            "type": self.type,
            "time": self.created_at.isoformat(),
            "datacontenttype": "application/json",
            "topic": self.topic,
            "eventversion": str(self.version),
        }
        optional = {
            "subject": self.subject,
            "tenantid": self.tenant_id,
            "aggregatetype": self.aggregate_type,
            "aggregateid": self.aggregate_id,
            "partitionkey": self.partition_key,
            "userid": self.user_id,
            "correlationid": self.correlation_id,
            "causationid": self.causation_id,
            "traceparent": self.traceparent,
        }
        attrs.update({k: v for k, v in optional.items() if v is not None})
        return attrs

    def to_cloudevent(self) -> dict[str, Any]:
        """The event in CloudEvents structured JSON form."""
        return {**self.cloudevent_attributes(), "data": self.payload}


def is_name(value: object) -> TypeGuard[str]:
    """True when ``value`` may be a type, topic, tenant or aggregate type: 1-255 characters from
    letters, digits and ``. _ : - /``, starting with a letter or digit."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def check_name(label: str, value: object, *, required: bool) -> str | None:
    """``value`` if it passes :func:`is_name` (None when empty and not ``required``);
    :class:`EventValidationError` naming ``label`` otherwise."""
    if value is None or value == "":
        if required:
            raise EventValidationError(f"event {label} is required and must not be empty")
        return None
    if not is_name(value):
        raise EventValidationError(
            f"event {label} {value!r} is invalid: use 1-255 characters from "
            "letters, digits and . _ : - / (starting with a letter or digit)"
        )
    return value


def _check_text(label: str, value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    if not text or len(text) > _FREE_TEXT_MAX or not text.isprintable():
        raise EventValidationError(f"event {label} must be 1-{_FREE_TEXT_MAX} printable characters")
    return text


def make_event(
    type: str,
    payload: object,
    *,
    topic: str | None = None,
    version: int = 1,
    tenant_id: str | None = None,
    aggregate_type: str | None = None,
    aggregate_id: object | None = None,
    partition_key: str | None = None,
    source: str = DEFAULT_SOURCE,
    user_id: object | None = None,
    correlation_id: object | None = None,
    causation_id: object | None = None,
    traceparent: str | None = None,
    idempotency_key: str | None = None,
    id: uuid.UUID | None = None,
    created_at: datetime | None = None,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    require_tenant: bool = False,
) -> Event:
    """Validate every field and build an :class:`Event`. Raises :class:`EventValidationError`.

    ``topic`` defaults to the aggregate type (or the event type); ``partition_key`` defaults to
    ``"{aggregate_type}:{aggregate_id}"`` so events of one aggregate stay in order.
    """
    checked_type = check_name("type", type, required=True)
    assert checked_type is not None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise EventValidationError(f"event version must be a positive integer, got {version!r}")
    tenant = check_name("tenant_id", tenant_id, required=require_tenant)
    agg_type = check_name("aggregate_type", aggregate_type, required=False)
    agg_id = _check_text("aggregate_id", aggregate_id)
    if agg_type is not None and agg_id is None:
        raise EventValidationError("event aggregate_type was given without aggregate_id")
    if partition_key is None and agg_id is not None:
        partition_key = f"{agg_type}:{agg_id}" if agg_type else agg_id
    key = _check_text("partition_key", partition_key)
    resolved_topic = check_name("topic", topic or agg_type or checked_type, required=True)
    assert resolved_topic is not None
    if traceparent is not None and not _TRACEPARENT.fullmatch(traceparent):
        raise EventValidationError(f"event traceparent {traceparent!r} is not a W3C traceparent")
    data = jsonutil.encode_payload(payload)
    if len(data) > max_payload_bytes:
        raise EventValidationError(
            f"event payload is {len(data)} bytes, over the limit of {max_payload_bytes} bytes"
        )
    return Event(
        id=id or new_id(),
        type=checked_type,
        data=data,
        topic=resolved_topic,
        version=version,
        tenant_id=tenant,
        aggregate_type=agg_type,
        aggregate_id=agg_id,
        partition_key=key,
        source=_check_text("source", source) or DEFAULT_SOURCE,
        created_at=created_at or datetime.now(UTC),
        user_id=_check_text("user_id", user_id),
        correlation_id=_check_text("correlation_id", correlation_id),
        causation_id=_check_text("causation_id", causation_id),
        traceparent=traceparent,
        idempotency_key=_check_text("idempotency_key", idempotency_key),
    )
