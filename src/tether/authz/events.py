"""Events for grant changes, written through an injected :class:`EventWriter`.

The store hands each change to the writer in the caller's transaction, so the event exists
iff the grant change commits. Authorization does not import the outbox (an import contract
keeps it so); :class:`tether.wiring.OutboxEventWriter` is the writer that adds the events to
Tether's outbox, where consumers (audit trails, other services' caches) read them like any
other Tether event.
"""

from __future__ import annotations

from typing import Any, Protocol

GRANTED = "tether.capability.granted"
REVOKED = "tether.capability.revoked"
ROLE_ASSIGNED = "tether.capability.role_assigned"
ROLE_UNASSIGNED = "tether.capability.role_unassigned"
ROLE_DEFINED = "tether.capability.role_defined"


class EventWriter(Protocol):
    """Writes one event on ``conn`` (the caller's session or connection), never committing."""

    async def write(
        self,
        conn: Any,
        event_type: str,
        payload: dict[str, Any],
        *,
        aggregate_type: str,
        aggregate_id: str,
        tenant_id: str | None,
    ) -> None: ...


async def emit(
    writer: EventWriter,
    conn: Any,
    event_type: str,
    payload: dict[str, Any],
    *,
    user: str | None,
    org: str | None,
) -> None:
    """A change about ``user`` is an event of aggregate ``user``; one about a role, of ``role``."""
    await writer.write(
        conn,
        event_type,
        payload,
        aggregate_type="user" if user is not None else "role",
        aggregate_id=user if user is not None else str(payload.get("role")),
        tenant_id=org,
    )
