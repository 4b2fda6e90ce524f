from __future__ import annotations

from examples.tradedesk.events import record
from examples.tradedesk.models import Partner
from examples.tradedesk.schemas import PartnerIn, PartnerOut
from examples.tradedesk.services.lookups import owned
from sqlalchemy.ext.asyncio import AsyncSession


async def create_partner(session: AsyncSession, body: PartnerIn, *, tenant: str) -> PartnerOut:
    async with session.begin():
        partner = Partner(tenant_id=tenant, **body.model_dump())
        session.add(partner)
        await session.flush()  # assigns the id the event and the answer carry
        out = PartnerOut.model_validate(partner)
        await record(
            session,
            out,
            event="PartnerCreated",
            aggregate="partner",
            aggregate_id=partner.id,
            tenant=tenant,
        )
    return out


async def verify_partner_kyc(session: AsyncSession, partner_id: int, *, tenant: str) -> PartnerOut:
    """Compliance has checked the partner's papers: the event says so."""
    async with session.begin():
        partner = await owned(session, Partner, partner_id, tenant)
        out = PartnerOut.model_validate(partner)
        await record(
            session,
            out,
            event="PartnerKycVerified",
            aggregate="partner",
            aggregate_id=partner.id,
            tenant=tenant,
            status_code=200,
        )
    return out
