from __future__ import annotations

from examples.tradedesk.events import record
from examples.tradedesk.models import Partner
from examples.tradedesk.schemas import PartnerIn, PartnerOut
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
