"""Outbox events for grant changes, written through Tether's own ``add_event``.

The event is added in the caller's transaction, so it exists iff the grant change commits;
consumers (audit trails, other services' caches) read them like any other Tether event.
"""

from __future__ import annotations

import importlib
from typing import Any

from tether.core.errors import ConfigError

GRANTED = "tether.capability.granted"
REVOKED = "tether.capability.revoked"
ROLE_ASSIGNED = "tether.capability.role_assigned"
ROLE_UNASSIGNED = "tether.capability.role_unassigned"
ROLE_DEFINED = "tether.capability.role_defined"


async def emit(
    session: Any, event_type: str, payload: dict[str, Any], user: str | None, org: str | None
) -> None:
    # Imported at call time: the outbox is an optional neighbour, not a hard import of authz.
    add_event = getattr(importlib.import_module("tether.outbox"), "add_event", None)
    if add_event is None:
        raise ConfigError(
            "tether.outbox.add_event is not available; create the store with outbox=False "
            "to change grants without outbox events"
        )
    await add_event(
        session,
        event_type,
        payload,
        aggregate_type="user" if user is not None else "role",
        aggregate_id=user if user is not None else str(payload.get("role")),
        tenant_id=org,
    )
