from __future__ import annotations

from examples.tradedesk.events import record
from examples.tradedesk.models import Availability
from examples.tradedesk.schemas import AvailabilityEdit, AvailabilityIn, AvailabilityOut
from examples.tradedesk.services.lookups import owned, partner_of_kind
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


async def edit_availability(
    session: AsyncSession, availability_id: int, body: AvailabilityEdit, *, tenant: str
) -> AvailabilityOut:
    """A new price or quantity (the router checks who may edit which offer)."""
    async with session.begin():
        row = await owned(session, Availability, availability_id, tenant)
        for field, value in body.model_dump(exclude_none=True).items():
            setattr(row, field, value)
        out = AvailabilityOut.model_validate(row)
        await record(
            session,
            out,
            event="AvailabilityEdited",
            aggregate="availability",
            aggregate_id=row.id,
            tenant=tenant,
            status_code=200,
        )
    return out


async def approve_availability(
    session: AsyncSession, availability_id: int, *, tenant: str
) -> AvailabilityOut:
    async with session.begin():
        row = await owned(session, Availability, availability_id, tenant)
        out = AvailabilityOut.model_validate(row)
        await record(
            session,
            out,
            event="AvailabilityApproved",
            aggregate="availability",
            aggregate_id=row.id,
            tenant=tenant,
            status_code=200,
        )
    return out
