from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from examples.tradedesk.events import record
from examples.tradedesk.models import Availability, Match, Requirement
from examples.tradedesk.schemas import MatchIn, MatchOut
from examples.tradedesk.services.errors import NotEnoughLeft, RuleBroken
from examples.tradedesk.services.lookups import owned
from sqlalchemy.ext.asyncio import AsyncSession

HIGH_VALUE = Decimal(10_000_000)  # Rs 1 crore: approving a trade worth more takes more


async def make_match(session: AsyncSession, body: MatchIn, *, tenant: str) -> MatchOut:
    """Match an offer to a need: both lose the quantity, at the offer's price."""
    async with session.begin():
        offer = await owned(session, Availability, body.availability_id, tenant)
        need = await owned(session, Requirement, body.requirement_id, tenant)
        if offer.commodity != need.commodity:
            raise RuleBroken("the offer and the need are for different commodities")
        if offer.price > need.max_price:
            raise RuleBroken("the offer's price is above the need's maximum")
        if body.quantity > min(offer.quantity, need.quantity):
            raise NotEnoughLeft("not enough quantity left on the offer or the need")
        offer.quantity -= body.quantity
        need.quantity -= body.quantity
        match = Match(tenant_id=tenant, price=offer.price, **body.model_dump())
        session.add(match)
        await session.flush()
        out = MatchOut.model_validate(match)
        await record(
            session,
            out,
            event="MatchMade",
            aggregate="match",
            aggregate_id=match.id,
            tenant=tenant,
        )
    return out


async def approve_trade(
    session: AsyncSession,
    match_id: int,
    *,
    tenant: str,
    check_high_value: Callable[[], Awaitable[None]],
) -> MatchOut:
    """Approve a trade. One worth over :data:`HIGH_VALUE` is approved only if
    ``check_high_value`` (the caller's capability check, raising to refuse) passes: it runs
    once the trade is read, locked, so its value cannot change before the approval commits."""
    async with session.begin():
        match = await owned(session, Match, match_id, tenant)
        if match.price * match.quantity > HIGH_VALUE:
            await check_high_value()
        out = MatchOut.model_validate(match)
        await record(
            session,
            out,
            event="TradeApproved",
            aggregate="match",
            aggregate_id=match.id,
            tenant=tenant,
            status_code=200,
        )
    return out
