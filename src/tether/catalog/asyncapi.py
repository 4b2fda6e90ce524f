"""An AsyncAPI 3.0 document for a catalog: one channel per topic, one message per version.

Payload schemas are pydantic's JSON schemas. Their ``$defs`` are hoisted into
``components/schemas`` under a per-message prefix (``OrderPlacedV2.Address``), so two versions
may each have their own ``Address`` without clashing and every ``$ref`` resolves from the
document's root, as AsyncAPI requires.
"""

from __future__ import annotations

from typing import Any

from tether.catalog.registry import EventCatalog, EventType

ASYNCAPI_VERSION = "3.0.0"

# The CloudEvents context attributes every Tether event carries (Event.cloudevent_attributes).
# Each transport writes them its own way (ce-id, ce_id, or an attribute map); the names below
# are the attributes themselves.
_HEADERS_REQUIRED = ("specversion", "id", "source", "type", "time", "datacontenttype", "topic")
_HEADERS_TEXT = {
    "specversion": "CloudEvents version, always 1.0.",
    "id": "Event id (UUIDv7); consumers deduplicate on it.",
    "source": "The producing service (ProducerPolicy.source).",
    "type": "The event type.",
    "time": "When the event was added (RFC 3339).",
    "datacontenttype": "Always application/json.",
    "topic": "The topic the event was routed by.",
    "eventversion": "The payload's version (a positive integer as text).",
    "subject": "The aggregate: aggregate_type/aggregate_id.",
    "tenantid": "Tenant the event belongs to.",
    "aggregatetype": "Aggregate type.",
    "aggregateid": "Aggregate id.",
    "partitionkey": "Events with one key are delivered in order.",
    "userid": "The user who caused the event.",
    "correlationid": "Correlation id of the request or saga.",
    "causationid": "Id of the event or command that caused this one.",
    "traceparent": "W3C trace context.",
}


def _headers(entry: EventType) -> dict[str, Any]:
    properties: dict[str, Any] = {
        name: {"type": "string", "description": text} for name, text in _HEADERS_TEXT.items()
    }
    properties["specversion"]["const"] = "1.0"
    properties["datacontenttype"]["const"] = "application/json"
    properties["type"]["const"] = entry.type
    properties["topic"]["const"] = entry.topic
    properties["eventversion"]["const"] = str(entry.version)
    properties["time"]["format"] = "date-time"
    properties["id"]["format"] = "uuid"
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes and Tether's extensions.",
        "required": [*_HEADERS_REQUIRED, "eventversion"],
        "properties": properties,
    }


def _example_headers(entry: EventType) -> dict[str, str]:
    return {
        "specversion": "1.0",
        "id": "0190f0a0-0000-7000-8000-000000000001",
        "source": "tether",
        "type": entry.type,
        "time": "2026-01-01T00:00:00+00:00",
        "datacontenttype": "application/json",
        "topic": entry.topic,
        "eventversion": str(entry.version),
    }


def _payload_schema(entry: EventType, schemas: dict[str, Any]) -> dict[str, Any]:
    prefix = entry.key
    schema = entry.json_schema(ref_template=f"#/components/schemas/{prefix}.{{model}}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas[f"{prefix}.{name}"] = definition
    schemas[prefix] = schema
    return {"$ref": f"#/components/schemas/{prefix}"}


def _message(entry: EventType, schemas: dict[str, Any], current: bool) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": entry.type,
        "title": f"{entry.type} v{entry.version}",
        "summary": entry.description
        or f"{entry.type}, version {entry.version}, on topic {entry.topic}.",
        "contentType": "application/json",
        "headers": _headers(entry),
        "payload": _payload_schema(entry, schemas),
        "tags": [{"name": "current" if current else "older version"}],
    }
    if entry.example is not None:
        message["examples"] = [
            {
                "name": f"{entry.key}Example",
                "headers": _example_headers(entry),
                "payload": entry.example,
            }
        ]
    return message


def _safe_id(text: str, taken: set[str]) -> str:
    # Ids are component keys (letters, digits . _ -); topics may hold : and / as well.
    base = "".join(c if c.isalnum() or c in "._-" else "_" for c in text)
    found, n = base, 1
    while found in taken:  # two topics that differ only in : or / still get their own id
        n += 1
        found = f"{base}_{n}"
    taken.add(found)
    return found


def build(catalog: EventCatalog) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every registered (type, version)."""
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for entry in catalog.types():
        current = catalog.current(entry.type) == entry
        messages[entry.key] = _message(entry, schemas, current)
        channel_id = ids.get(entry.topic) or ids.setdefault(
            entry.topic, _safe_id(entry.topic, taken)
        )
        channel = channels.setdefault(
            channel_id,
            {
                "address": entry.topic,
                "title": entry.topic,
                "description": f"Events on topic {entry.topic}.",
                "messages": {},
            },
        )
        channel["messages"][entry.key] = {"$ref": f"#/components/messages/{entry.key}"}
    for channel_id, channel in channels.items():
        operations[f"send.{channel_id}"] = {
            "action": "send",
            "title": f"Publish to {channel['address']}",
            "summary": "Tether's relay publishes committed outbox events here.",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{key}"} for key in channel["messages"]
            ],
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": catalog.title,
            "version": catalog.version,
            "description": "Generated by `tether catalog` from the registered event types.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
