"""Matching an offer to a need moves goods and money: an Idempotency-Key is required here
(see the policy in app.py) and each user gets the ``strict`` rate limit on top of their plan."""

from __future__ import annotations

from examples.tradedesk import db, errors
from examples.tradedesk.auth import tenant_of
from examples.tradedesk.authz import Cap, need
from examples.tradedesk.models import Match
from examples.tradedesk.schemas import MatchIn, MatchOut
from examples.tradedesk.services import matches
from fastapi import APIRouter, Depends, Request, Response
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
    return await matches.make_match(session, body, tenant=tenant)


@router.get("", dependencies=[need(Cap.MATCH_VIEW)])
async def list_matches(
    tenant: str = Depends(tenant_of), session: AsyncSession = Depends(db.session)
) -> list[MatchOut]:
    rows = await session.scalars(select(Match).where(Match.tenant_id == tenant))
    return [MatchOut.model_validate(m) for m in rows]
