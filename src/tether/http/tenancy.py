"""FastAPI dependencies that scope a request's database work to the caller's tenant.

The tenant comes from authentication, as :func:`tether.http.identity.tenant_of` reads it
(``scope["state"]["tenant_id"]``), never from the request body. :func:`tenant_session` wraps
the application's own session dependency: it scopes the session's transaction to the tenant
(:func:`tether.tenancy.tenant_scope`) before the handler sees it, so with row-level security on
(docs/tenancy.md) the handler reads and writes that tenant's rows only.

    TenantSession = tenant_session(get_session)

    @app.post("/orders")
    async def place(tenant: Annotated[str, Depends(current_tenant)],
                    session: Annotated[AsyncSession, Depends(TenantSession)]) -> ...:
        await add_event(session, "OrderPlaced", {...}, tenant_id=tenant)

A request without a tenant, or with one that fails validation, gets 403 before any query.
The scope lasts until the session's transaction ends: a handler that commits and goes on
works unscoped, and an unscoped transaction sees nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, HTTPException, Request

from tether.core.errors import EventValidationError
from tether.http.identity import tenant_of
from tether.tenancy import check_tenant_id, tenant_scope


def current_tenant(request: Request) -> str:
    """The authenticated caller's tenant id, validated; 403 when there is none or it is bad."""
    tenant = tenant_of(request.scope)
    if tenant is None:
        raise HTTPException(status_code=403, detail="this request has no tenant")
    try:
        return check_tenant_id(tenant)
    except EventValidationError as exc:
        # The id comes from authentication, not the client: do not echo it back.
        raise HTTPException(status_code=403, detail="this request's tenant id is invalid") from exc


def tenant_session(session: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """A dependency giving ``session``'s value (an ``AsyncSession``, an asyncpg or psycopg
    connection in a transaction, ...) scoped to the caller's tenant."""

    # Defaults, not Annotated[...]: annotations are strings here (postponed evaluation) and
    # FastAPI could not resolve the closure's ``session`` from them.
    async def scoped(
        tenant: str = Depends(current_tenant),
        db: Any = Depends(session),  # noqa: B008 - FastAPI's dependency idiom
    ) -> Any:
        await tenant_scope(db, tenant)
        return db

    return scoped
