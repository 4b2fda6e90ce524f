"""Tenant-scoped loads shared by the services: another tenant's rows are simply not found."""

from __future__ import annotations

from typing import TypeVar

from examples.tradedesk.models import Availability, Match, Partner, Requirement
from examples.tradedesk.services.errors import NotFound, RuleBroken
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

Row = TypeVar("Row", Partner, Availability, Requirement, Match)


async def owned(session: AsyncSession, model: type[Row], row_id: int, tenant: str) -> Row:
    # FOR UPDATE (a no-op on SQLite): concurrent matches against one offer serialize on its
    # row, and a change waits for a match in flight, so its answer and event show the row as
    # stored, not as it was before the match.
    query = select(model).where(model.id == row_id, model.tenant_id == tenant).with_for_update()
    row = (await session.scalars(query)).first()
    if row is None:
        raise NotFound(f"no such {model.__name__.lower()} {row_id}")
    return row


async def partner_of_kind(
    session: AsyncSession, partner_id: int, tenant: str, kind: str
) -> Partner:
    partner = await owned(session, Partner, partner_id, tenant)
    if partner.kind not in (kind, "both"):
        raise RuleBroken(f"partner {partner_id} is not a {kind}")
    return partner
