from __future__ import annotations

from typing import Annotated

from examples.tradedesk import db, errors
from examples.tradedesk.auth import principal_of, tenant_of
from examples.tradedesk.authz import Cap, need
from examples.tradedesk.models import Availability
from examples.tradedesk.schemas import NO_NUL, AvailabilityIn, AvailabilityOut
from examples.tradedesk.services import availabilities
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
    return await availabilities.post_availability(session, body, tenant=tenant, principal=principal)


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
