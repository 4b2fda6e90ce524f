from __future__ import annotations

from typing import Annotated

from examples.tradedesk import db, errors
from examples.tradedesk.auth import tenant_of
from examples.tradedesk.authz import Cap, need
from examples.tradedesk.models import Partner
from examples.tradedesk.schemas import INT4_MAX, PartnerIn, PartnerOut
from examples.tradedesk.services import partners
from fastapi import APIRouter, Depends, HTTPException, Path
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

router = APIRouter(prefix="/partners", tags=["partners"], responses=errors.COMMON)


@router.post("", status_code=201, dependencies=[need(Cap.PARTNER_CREATE)])
async def create_partner(
    body: PartnerIn,
    tenant: str = Depends(tenant_of),
    session: AsyncSession = Depends(db.session),
) -> PartnerOut:
    return await partners.create_partner(session, body, tenant=tenant)


@router.get("", dependencies=[need(Cap.PARTNER_VIEW)])
async def list_partners(
    tenant: str = Depends(tenant_of), session: AsyncSession = Depends(db.session)
) -> list[PartnerOut]:
    rows = await session.scalars(select(Partner).where(Partner.tenant_id == tenant))
    return [PartnerOut.model_validate(p) for p in rows]


@router.get("/{partner_id}", dependencies=[need(Cap.PARTNER_VIEW)], responses=errors.NOT_FOUND)
async def get_partner(
    partner_id: Annotated[int, Path(ge=1, le=INT4_MAX)],
    tenant: str = Depends(tenant_of),
    session: AsyncSession = Depends(db.session),
) -> PartnerOut:
    partner = await session.get(Partner, partner_id)
    if partner is None or partner.tenant_id != tenant:
        raise HTTPException(404, "no such partner")
    return PartnerOut.model_validate(partner)
