"""Rows to values and back, shared by the PostgreSQL and SQLite adapters.

Error text and history entries are made by :mod:`tether.core.lifecycle`, for every face."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from tether.core import jsonutil
from tether.queue.ports import ErrorRecord, Item, ItemState
from tether.queue.spec import TableSpec


def encode_payload(payload: object) -> str:
    return jsonutil.encode_payload(payload).decode()


def json_value(value: Any) -> Any:
    """A JSON column as Python: drivers hand jsonb over as text, SQLite as text or bytes."""
    return jsonutil.loads(value) if isinstance(value, str | bytes) else value


_STATES = {s.value: s for s in ItemState}  # a dict lookup is ~10x cheaper than ItemState(v)


def _errors(value: Any, to_dt: Callable[[Any], datetime]) -> tuple[ErrorRecord, ...]:
    if value in ("[]", []):  # the common case: no failures yet
        return ()
    return tuple(
        ErrorRecord(at=to_dt(e.get("at")), attempt=int(e.get("attempt", 0)), error=str(e["error"]))
        for e in json_value(value) or ()
    )


def item_from_row(
    row: Mapping[str, Any],
    spec: TableSpec,
    *,
    to_dt: Callable[[Any], datetime],
    to_uuid: Callable[[Any], uuid.UUID],
) -> Item:
    def opt_dt(v: Any) -> datetime | None:
        return None if v is None else to_dt(v)

    return Item(
        seq=int(row["seq"]),
        id=to_uuid(row["id"]),
        queue=row["queue"],
        partition_key=row["partition_key"],
        state=_STATES[row["state"]],
        attempts=int(row["attempts"]),
        max_attempts=row["max_attempts"],
        available_at=to_dt(row["available_at"]),
        lease_token=None if row["lease_token"] is None else to_uuid(row["lease_token"]),
        worker=row["worker"],
        last_error=row["last_error"],
        errors=_errors(row["errors"], to_dt),
        created_at=to_dt(row["created_at"]),
        finished_at=opt_dt(row["finished_at"]),
        payload=json_value(row["payload"]),
        extra={name: row[name] for name in spec.extra_columns} if spec.extra_columns else {},
    )


def iso_to_dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
