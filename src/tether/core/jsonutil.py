"""JSON encoding in one place (orjson), with errors that name the offending value."""

from __future__ import annotations

from typing import Any

import orjson

from tether.core.errors import EventValidationError

JSONValue = Any


def dumps(value: JSONValue) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise EventValidationError(f"payload is not JSON-serializable: {exc}") from exc


def loads(data: bytes | str) -> JSONValue:
    return orjson.loads(data)


def encode_payload(payload: object) -> bytes:
    """Accept a JSON-compatible value, a pydantic model, or already-encoded JSON bytes."""
    dump = getattr(payload, "model_dump", None)
    if callable(dump):
        return dumps(dump(mode="json"))
    if isinstance(payload, bytes | bytearray | memoryview):
        raw = bytes(payload)
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise EventValidationError(f"payload bytes are not valid JSON: {exc}") from exc
        return raw
    return dumps(payload)
