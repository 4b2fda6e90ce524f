"""Identifiers. Event and item ids are UUIDv7: time-ordered, so indexes stay append-mostly."""

from __future__ import annotations

import uuid

import uuid_utils.compat as _uuid_compat


def new_id() -> uuid.UUID:
    """A fresh UUIDv7."""
    return _uuid_compat.uuid7()


def parse_id(value: str | uuid.UUID) -> uuid.UUID:
    """Parse a UUID given as text; the error names the bad value."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError) as exc:
        from tether.core.errors import EventValidationError

        raise EventValidationError(f"not a UUID: {value!r}") from exc
