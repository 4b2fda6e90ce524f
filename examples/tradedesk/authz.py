"""Capability authorization for the trade desk (Tether ``tether.authz``), kept in this one file.

What it adds to the app:
* ``Cap``: every capability the desk checks, declared in code and synced at start-up.
* ``ROLES``: trader, approver, compliance, auditor, as org-scoped roles.
* ``need(Cap.X)``: the route dependency (``dependencies=[need(Cap.PARTNER_CREATE)]``).
* ``router``: the reference examples that need more than one capability or an owner check:
  edit an availability (own vs any), approve one, approve a trade (over Rs 1 Cr needs
  ``trade:approve-high-value`` on top), verify a partner's KYC.
The user is the authenticated principal and the organization is the caller's tenant, both
set by ``ApiKeyAuth``; with tokens, use ``OrgFrom.claim("org")`` instead.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from examples.tradedesk import db, errors
from examples.tradedesk.auth import tenant_of
from examples.tradedesk.models import Availability
from examples.tradedesk.schemas import (
    INT4_MAX,
    AvailabilityEdit,
    AvailabilityOut,
    MatchOut,
    PartnerOut,
    RowId,
)
from examples.tradedesk.services import availabilities, matches, partners
from examples.tradedesk.settings import ApiClient
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tether.authz import (
    Authz,
    Forbidden,
    InvalidationWatcher,
    Registry,
    SqlAuthzStore,
    listen_dsn_of,
)
from tether.authz.fastapi import install, require
from tether.wiring import OutboxEventWriter


class Cap(StrEnum):
    PARTNER_CREATE = "partner:create"
    PARTNER_VIEW = "partner:view"
    PARTNER_KYC_VERIFY = "partner:kyc-verify"
    AVAILABILITY_POST = "availability:post"
    AVAILABILITY_VIEW = "availability:view"
    AVAILABILITY_EDIT_OWN = "availability:edit:own"
    AVAILABILITY_EDIT_ANY = "availability:edit:any"
    AVAILABILITY_APPROVE = "availability:approve"
    REQUIREMENT_POST = "requirement:post"
    REQUIREMENT_VIEW = "requirement:view"
    MATCH_CREATE = "match:create"
    MATCH_VIEW = "match:view"
    TRADE_APPROVE = "trade:approve"
    TRADE_APPROVE_HIGH_VALUE = "trade:approve-high-value"


REGISTRY = Registry(Cap)
_VIEW = [Cap.PARTNER_VIEW, Cap.AVAILABILITY_VIEW, Cap.REQUIREMENT_VIEW, Cap.MATCH_VIEW]
ROLES: dict[str, list[Cap]] = {
    "trader": [
        *_VIEW,
        Cap.PARTNER_CREATE,
        Cap.AVAILABILITY_POST,
        Cap.AVAILABILITY_EDIT_OWN,
        Cap.REQUIREMENT_POST,
        Cap.MATCH_CREATE,
    ],
    "approver": [*_VIEW, Cap.AVAILABILITY_EDIT_ANY, Cap.AVAILABILITY_APPROVE, Cap.TRADE_APPROVE],
    "compliance": [Cap.PARTNER_VIEW, Cap.PARTNER_KYC_VERIFY],
    "auditor": _VIEW,
}


def need(capability: Cap) -> Any:
    """``dependencies=[need(Cap.X)]`` on a route."""
    return Depends(require(capability))


# --- ownership: who posted an availability -------------------------------------------------
# Each availability records the principal that posted it (``posted_by``); ":own" checks it.


async def _principal_of(request: Request) -> str | None:
    user = getattr(request.state, "principal", None)
    return None if user is None else str(user)


def _tenant(request: Request) -> str | None:
    tenant = getattr(request.state, "tenant_id", None)
    return None if tenant is None else str(tenant)


_ROW_ID: TypeAdapter[int] = TypeAdapter(RowId)


def _path_id(request: Request, name: str) -> int:
    """The path parameter ``name`` validated as the route declares it. An owner check runs
    before FastAPI validates the path, so it validates first itself: a bad id is a 422, the
    same answer the route gives, never a failed conversion (500) or a 403."""
    try:
        return _ROW_ID.validate_python(request.path_params[name])
    except ValidationError as exc:
        found = [{**error, "loc": ("path", name)} for error in exc.errors()]
        raise RequestValidationError(found) from exc


async def _author_of_availability(request: Request, user: str) -> bool:
    availability_id = _path_id(request, "availability_id")
    sessions = request.app.state.sessions
    async with sessions() as session:
        author = await session.scalar(
            select(Availability.posted_by).where(Availability.id == availability_id)
        )
    return bool(author == user)


# --- wiring --------------------------------------------------------------------------------


def attach(app: FastAPI, engine: AsyncEngine, *, pooler: str = "none") -> Authz:
    """Create the Authz over the app's engine and install the dependency; call in create_app."""
    store = SqlAuthzStore(engine, events=OutboxEventWriter(), pooler_mode=pooler)
    authz = Authz(store, REGISTRY)
    app.state.authz = authz
    install(app, authz, user=_principal_of, org=_tenant, error_content=errors.PROBLEM_CONTENT)
    return authz


async def seed(app: FastAPI, demo_clients: dict[str, ApiClient]) -> None:
    """Tables (SQLite), capabilities, roles and demo grants (in lifespan, under the set-up lock)."""
    authz: Authz = app.state.authz
    store = authz.store
    assert isinstance(store, SqlAuthzStore)
    if not store.is_postgres:
        await store.create_sqlite_schema()
    await authz.sync()
    for role, caps in ROLES.items():
        await authz.define_role(role, list(caps))
    # Demo only: every configured API client trades in its own tenant.
    for client in demo_clients.values():
        await authz.add_user(client.principal)
        await authz.add_org(client.tenant_id)
        await authz.assign_role(client.principal, "trader", client.tenant_id)


async def watch(app: FastAPI) -> None:
    """Start the invalidation watcher (in lifespan, after ``seed``)."""
    authz: Authz = app.state.authz
    store = authz.store
    assert isinstance(store, SqlAuthzStore)
    assert authz.cache is not None
    watcher = InvalidationWatcher(store, authz.cache, listen_dsn=listen_dsn_of(store))
    await watcher.start()
    app.state.authz_watcher = watcher


async def stop(app: FastAPI) -> None:
    watcher: InvalidationWatcher | None = getattr(app.state, "authz_watcher", None)
    if watcher is not None:
        await watcher.stop()
    await app.state.authz.store.close()


# --- the reference examples ----------------------------------------------------------------

router = APIRouter(tags=["authorization examples"], responses={**errors.COMMON, **errors.NOT_FOUND})
AvailabilityId = Annotated[int, Path(ge=1, le=INT4_MAX)]
MatchId = Annotated[int, Path(ge=1, le=INT4_MAX)]
PartnerId = Annotated[int, Path(ge=1, le=INT4_MAX)]


@router.patch(
    "/availabilities/{availability_id}",
    dependencies=[Depends(require("availability:edit", owner=_author_of_availability))],
)
async def edit_availability(
    availability_id: AvailabilityId,
    body: AvailabilityEdit,
    tenant: str = Depends(tenant_of),
    session: AsyncSession = Depends(db.session),
) -> AvailabilityOut:
    """Traders edit their own offers (``:own``); approvers edit any (``:any``)."""
    return await availabilities.edit_availability(session, availability_id, body, tenant=tenant)


@router.post(
    "/availabilities/{availability_id}/approve", dependencies=[need(Cap.AVAILABILITY_APPROVE)]
)
async def approve_availability(
    availability_id: AvailabilityId,
    tenant: str = Depends(tenant_of),
    session: AsyncSession = Depends(db.session),
) -> AvailabilityOut:
    return await availabilities.approve_availability(session, availability_id, tenant=tenant)


@router.post("/matches/{match_id}/approve", dependencies=[need(Cap.TRADE_APPROVE)])
async def approve_trade(
    match_id: MatchId,
    request: Request,
    tenant: str = Depends(tenant_of),
    session: AsyncSession = Depends(db.session),
) -> MatchOut:
    """Any approver approves a trade; one worth over Rs 1 Cr needs the high-value capability."""
    authz: Authz = request.app.state.authz

    async def high_value() -> None:
        await authz.require(request.state.principal, Cap.TRADE_APPROVE_HIGH_VALUE, tenant)

    try:
        return await matches.approve_trade(
            session, match_id, tenant=tenant, check_high_value=high_value
        )
    except Forbidden as exc:
        raise HTTPException(403, str(exc)) from exc


@router.post("/partners/{partner_id}/kyc-verify", dependencies=[need(Cap.PARTNER_KYC_VERIFY)])
async def verify_partner_kyc(
    partner_id: PartnerId,
    tenant: str = Depends(tenant_of),
    session: AsyncSession = Depends(db.session),
) -> PartnerOut:
    return await partners.verify_partner_kyc(session, partner_id, tenant=tenant)
