from __future__ import annotations

from examples.tradedesk.events import record
from examples.tradedesk.models import Availability
from examples.tradedesk.schemas import AvailabilityIn, AvailabilityOut
from examples.tradedesk.services.lookups import partner_of_kind
from sqlalchemy.ext.asyncio import AsyncSession


async def post_availability(
    session: AsyncSession, body: AvailabilityIn, *, tenant: str, principal: str
) -> AvailabilityOut:
    """A seller's offer, posted by ``principal`` (its author, for ``availability:edit:own``)."""
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
