"""An asyncpg pool whose every statement runs in a transaction scoped to the request's tenant.

For code that takes a pool and runs its own statements, such as the webhooks routes' stores
(:mod:`tether.webhooks.routes`), when the application's database role is under row-level
security (docs/tenancy.md): one shared pool serves every tenant, and each statement (or each
connection checked out with ``acquire``) is scoped to the tenant the request was bound to by
the :func:`bind_tenant` dependency::

    pool = TenantPool(await asyncpg.create_pool(app_dsn))
    app.include_router(
        webhooks_router(EndpointStore(pool), DeliveryLog(pool)),
        dependencies=[Depends(bind_tenant)],
    )

The scope is the transaction's (``tether_set_tenant``), so it ends with it and never stays on
a pooled connection. Nothing bound (a route outside the dependency, a background task) means
no scope, which row-level security answers with no rows: it fails closed. The cost is the
transaction: two round trips more per statement than the bare pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends

from tether.http.tenancy import current_tenant
from tether.tenancy import check_tenant_id, tenant_scope

_BOUND: ContextVar[str | None] = ContextVar("tether_bound_tenant", default=None)


async def bind_tenant(tenant: Annotated[str, Depends(current_tenant)]) -> str:
    """FastAPI dependency: bind the request's tenant (403 without a valid one) for every
    :class:`TenantPool` statement the handler runs. It must stay ``async``: FastAPI runs a
    plain function on a worker thread, whose context the handler would not see."""
    _BOUND.set(tenant)
    return tenant


def bind(tenant: str | None) -> None:
    """Bind ``tenant`` (checked) for the current task and the tasks it starts, outside FastAPI;
    None unbinds."""
    _BOUND.set(None if tenant is None else check_tenant_id(tenant))


class TenantPool:
    """The statement methods of an asyncpg pool (``fetch``, ``fetchrow``, ``fetchval``,
    ``execute``, ``acquire``, ``close``), each in a transaction scoped to the bound tenant."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        """A connection inside a transaction scoped to the bound tenant (a transaction the
        caller opens on it is a savepoint of that one)."""
        tenant = _BOUND.get()
        async with self.pool.acquire() as conn, conn.transaction():
            if tenant is not None:
                await tenant_scope(conn, tenant)
            yield conn

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        async with self.acquire() as conn:
            return await conn.fetch(query, *args, timeout=timeout)

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args, timeout=timeout)

    async def fetchval(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args, timeout=timeout)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        async with self.acquire() as conn:
            return str(await conn.execute(query, *args, timeout=timeout))

    async def close(self) -> None:
        await self.pool.close()
