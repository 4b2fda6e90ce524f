from __future__ import annotations

from examples.tradedesk.events import record
from examples.tradedesk.models import Requirement
from examples.tradedesk.schemas import RequirementIn, RequirementOut
from examples.tradedesk.services.lookups import partner_of_kind
from sqlalchemy.ext.asyncio import AsyncSession


async def post_requirement(
    session: AsyncSession, body: RequirementIn, *, tenant: str
) -> RequirementOut:
    """A buyer's need."""
    async with session.begin():
        await partner_of_kind(session, body.partner_id, tenant, "buyer")
        row = Requirement(tenant_id=tenant, **body.model_dump())
        session.add(row)
        await session.flush()
        out = RequirementOut.model_validate(row)
        await record(
            session,
            out,
            event="RequirementPosted",
            aggregate="requirement",
            aggregate_id=row.id,
            tenant=tenant,
        )
    return out
