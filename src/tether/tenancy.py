"""Tenant scope for PostgreSQL row-level security.

Tether's tables carry a tenant id and, on PostgreSQL, row-level security policies (schema file
``040_tenancy.sql``, enabled with ``SELECT tether_tenancy(true)``) that let a non-owner role see
and write only the rows of the tenant named by the transaction-local setting
``tether.tenant_id``. :func:`tenant_scope` sets it inside the caller's transaction (the
database's ``tether_set_tenant``, i.e. ``set_config(..., true)``), so it ends with the
transaction and never leaks to the next user of a pooled connection. An unset setting matches
no row (fails closed), and a transaction already scoped to another tenant is refused.

The tenant id follows the envelope's name rule and is checked before anything is sent, so a bad
id never reaches the database. On SQLite (no row-level security) the scope is only validated.
"""

from __future__ import annotations

from tether.core.envelope import check_name
from tether.store import drivers
from tether.store.sqlfile import Query

SETTING = "tether.tenant_id"
"""The transaction-local setting the row-level security policies compare tenant ids with."""

_SET = Query("tenant_scope", "SELECT tether_set_tenant(:tenant_id)")


def check_tenant_id(tenant_id: object) -> str:
    """``tenant_id`` if it is a valid tenant id; :class:`EventValidationError` naming it if not."""
    checked = check_name("tenant_id", tenant_id, required=True)
    assert checked is not None  # required=True never returns None
    return checked


async def tenant_scope(target: object, tenant_id: str) -> None:
    """Scope the transaction ``target`` has open to ``tenant_id`` (until it commits or rolls
    back). ``target`` is any handle :func:`tether.outbox.add_event` accepts."""
    values: dict[str, object] = {"tenant_id": check_tenant_id(tenant_id)}
    if drivers.dialect_of(target) == "postgres":
        await drivers.execute(target, _SET, values)


def tenant_scope_sync(target: object, tenant_id: str) -> None:
    """:func:`tenant_scope` for synchronous handles."""
    values: dict[str, object] = {"tenant_id": check_tenant_id(tenant_id)}
    if drivers.dialect_of(target) == "postgres":
        drivers.execute_sync(target, _SET, values)
