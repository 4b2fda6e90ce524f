"""Event validation: every bad field is refused with a message that names it."""

from __future__ import annotations

import uuid

import pytest

from tether.core.envelope import Event, make_event
from tether.core.errors import EventValidationError


def test_defaults_derive_topic_and_partition_key() -> None:
    e = make_event("PartnerLocationAdded", {"x": 1}, aggregate_type="partner", aggregate_id=42)
    assert e.topic == "partner"
    assert e.partition_key == "partner:42"
    assert e.subject == "partner/42"
    assert e.data == b'{"x":1}'
    assert e.payload == {"x": 1}
    assert e.id.version == 7


def test_cloudevent_mapping() -> None:
    e = make_event(
        "A.B",
        [1],
        tenant_id="acme",
        correlation_id="c-1",
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
    )
    ce = e.to_cloudevent()
    assert ce["specversion"] == "1.0"
    assert ce["id"] == str(e.id)
    assert ce["type"] == "A.B"
    assert ce["tenantid"] == "acme"
    assert ce["correlationid"] == "c-1"
    assert ce["data"] == [1]
    assert "subject" not in ce


def test_pydantic_models_and_json_bytes_are_payloads() -> None:
    from pydantic import BaseModel

    class Placed(BaseModel):
        order_id: uuid.UUID
        total: float

    oid = uuid.uuid4()
    assert make_event("Placed", Placed(order_id=oid, total=2.5)).payload == {
        "order_id": str(oid),
        "total": 2.5,
    }
    assert make_event("Placed", b'{"a": 1}').data == b'{"a": 1}'


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": ""}, "type is required"),
        ({"type": "has space"}, "event type 'has space' is invalid"),
        ({"type": "x" * 256}, "is invalid"),
        ({"type": "a;DROP TABLE"}, "is invalid"),
        ({"payload": object()}, "not JSON-serializable"),
        ({"payload": b"{not json"}, "not valid JSON"),
        ({"payload": {"x": "y" * 2000}, "max_payload_bytes": 1000}, "over the limit of 1000 bytes"),
        ({"require_tenant": True}, "tenant_id is required"),
        ({"tenant_id": "bad tenant"}, "tenant_id 'bad tenant' is invalid"),
        ({"version": 0}, "version must be a positive integer"),
        ({"version": True}, "version must be a positive integer"),
        ({"aggregate_type": "order"}, "without aggregate_id"),
        ({"aggregate_id": "x" * 300}, "aggregate_id must be 1-255"),
        ({"aggregate_id": "line\nbreak"}, "aggregate_id must be 1-255 printable"),
        ({"traceparent": "nope"}, "not a W3C traceparent"),
        ({"topic": "orders/../../etc"}, None),
    ],
)
def test_bad_fields_are_refused(kwargs: dict[str, object], message: str | None) -> None:
    args: dict[str, object] = {"type": "OrderPlaced", "payload": {}}
    args.update(kwargs)
    if message is None:  # allowed characters only; still valid
        make_event(**args)  # type: ignore[arg-type]
        return
    with pytest.raises(EventValidationError, match=message):
        make_event(**args)  # type: ignore[arg-type]


def test_events_are_immutable() -> None:
    e = make_event("A", {})
    with pytest.raises(AttributeError):
        e.type = "B"  # type: ignore[misc]
    assert isinstance(e, Event)


def test_names_with_a_trailing_newline_are_refused() -> None:
    # `$` matches before a final newline; names and traceparents must match in full.
    with pytest.raises(EventValidationError):
        make_event("OrderPlaced\n", {})
    with pytest.raises(EventValidationError):
        make_event("OrderPlaced", {}, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01\n")
