from __future__ import annotations

from typing import Annotated

from examples.tradedesk import db, errors
from examples.tradedesk.auth import tenant_of
from examples.tradedesk.authz import Cap, need
from examples.tradedesk.models import Requirement
from examples.tradedesk.schemas import NO_NUL, RequirementIn, RequirementOut
from examples.tradedesk.services import requirements
from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

router = APIRouter(prefix="/requirements", tags=["requirements"], responses=errors.COMMON)


@router.post(
    "", status_code=201, dependencies=[need(Cap.REQUIREMENT_POST)], responses=errors.NOT_FOUND
)
async def post_requirement(
    body: RequirementIn,
    tenant: str = Depends(tenant_of),
    session: AsyncSession = Depends(db.session),
) -> RequirementOut:
    return await requirements.post_requirement(session, body, tenant=tenant)


@router.get("", dependencies=[need(Cap.REQUIREMENT_VIEW)])
async def list_requirements(
    commodity: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    tenant: str = Depends(tenant_of),
    session: AsyncSession = Depends(db.session),
) -> list[RequirementOut]:
    query = select(Requirement).where(Requirement.tenant_id == tenant)
    if commodity:
        query = query.where(Requirement.commodity == commodity)
    return [RequirementOut.model_validate(r) for r in await session.scalars(query)]
