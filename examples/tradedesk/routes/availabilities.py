from __future__ import annotations

from typing import Annotated

from examples.tradedesk import db, errors
from examples.tradedesk.auth import principal_of, tenant_of
from examples.tradedesk.authz import Cap, need
from examples.tradedesk.events import record
from examples.tradedesk.models import Availability
from examples.tradedesk.routes.lookups import partner_of_kind
from examples.tradedesk.schemas import NO_NUL, AvailabilityIn, AvailabilityOut
from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

router = APIRouter(prefix="/availabilities", tags=["availabilities"], responses=errors.COMMON)


@router.post(
    "", status_code=201, dependencies=[need(Cap.AVAILABILITY_POST)], responses=errors.NOT_FOUND
)
async def post_availability(
    body: AvailabilityIn,
    tenant: str = Depends(tenant_of),
    principal: str = Depends(principal_of),
    session: AsyncSession = Depends(db.session),
) -> AvailabilityOut:
    async with session.begin():
        await partner_of_kind(session, body.partner_id, tenant, "seller")
        row = Availability(tenant_id=tenant, posted_by=principal, **body.model_dump())
        session.add(row)
        await session.flush()
        out = AvailabilityOut.model_validate(row)
        await record(
            session,
            out,
            event="AvailabilityPosted",
            aggregate="availability",
            aggregate_id=row.id,
            tenant=tenant,
        )
    return out


@router.get("", dependencies=[need(Cap.AVAILABILITY_VIEW)])
async def list_availabilities(
    commodity: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    tenant: str = Depends(tenant_of),
    session: AsyncSession = Depends(db.session),
) -> list[AvailabilityOut]:
    query = select(Availability).where(Availability.tenant_id == tenant)
    if commodity:
        query = query.where(Availability.commodity == commodity)
    return [AvailabilityOut.model_validate(r) for r in await session.scalars(query)]
