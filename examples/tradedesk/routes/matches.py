"""Matching an offer to a need moves goods and money: an Idempotency-Key is required here
(see the policy in app.py) and each user gets the ``strict`` rate limit on top of their plan."""

from __future__ import annotations

from examples.tradedesk import db, errors
from examples.tradedesk.auth import tenant_of
from examples.tradedesk.authz import Cap, need
from examples.tradedesk.events import record
from examples.tradedesk.models import Availability, Match, Requirement
from examples.tradedesk.routes.lookups import owned
from examples.tradedesk.schemas import MatchIn, MatchOut
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tether.http.ratelimit import STRICT, Rule, by_user
from tether.http.ratelimit.dependency import RateLimit

router = APIRouter(prefix="/matches", tags=["matches"], responses=errors.COMMON)
PER_USER = Rule(by_user(), STRICT, name="matching")


async def matching_quota(request: Request, response: Response) -> None:
    await RateLimit(request.app.state.limiter, PER_USER)(request, response)


@router.post(
    "",
    status_code=201,
    dependencies=[need(Cap.MATCH_CREATE), Depends(matching_quota)],
    responses={**errors.NOT_FOUND, **errors.CONFLICT},
)
async def make_match(
    body: MatchIn,
    tenant: str = Depends(tenant_of),
    session: AsyncSession = Depends(db.session),
) -> MatchOut:
    async with session.begin():
        offer = await owned(session, Availability, body.availability_id, tenant)
        need = await owned(session, Requirement, body.requirement_id, tenant)
        if offer.commodity != need.commodity:
            raise HTTPException(422, "the offer and the need are for different commodities")
        if offer.price > need.max_price:
            raise HTTPException(422, "the offer's price is above the need's maximum")
        if body.quantity > min(offer.quantity, need.quantity):
            raise HTTPException(409, "not enough quantity left on the offer or the need")
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


@router.get("", dependencies=[need(Cap.MATCH_VIEW)])
async def list_matches(
    tenant: str = Depends(tenant_of), session: AsyncSession = Depends(db.session)
) -> list[MatchOut]:
    rows = await session.scalars(select(Match).where(Match.tenant_id == tenant))
    return [MatchOut.model_validate(m) for m in rows]
