"""Where Tether's components meet: the defaults that connect one to another.

The components do not import each other (import-linter keeps them apart), so a default that
needs two of them is assembled here: grant changes written to the outbox.
"""

from __future__ import annotations

from typing import Any

from tether.authz.sql import SqlAuthzStore
from tether.outbox import add_event


class OutboxEventWriter:
    """An :class:`tether.authz.events.EventWriter` that adds each event to Tether's outbox
    with ``add_event``, in the caller's transaction."""

    async def write(
        self,
        conn: Any,
        event_type: str,
        payload: dict[str, Any],
        *,
        aggregate_type: str,
        aggregate_id: str,
        tenant_id: str | None,
    ) -> None:
        await add_event(
            conn,
            event_type,
            payload,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            tenant_id=tenant_id,
        )


def authz_store(url: str, *, outbox: bool | None = None, **engine_options: Any) -> SqlAuthzStore:
    """:meth:`SqlAuthzStore.from_url` with grant events in the outbox: by default on
    PostgreSQL; on SQLite with ``outbox=True``, once Tether's SQLite outbox tables exist."""
    postgres = url.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")
    wanted = postgres if outbox is None else outbox
    events = OutboxEventWriter() if wanted else None
    return SqlAuthzStore.from_url(url, events=events, **engine_options)
