"""The end of every state-changing handler: the outbox event and the idempotency record are
written in the handler's transaction, so the business rows, the event and the stored response
commit together or not at all."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from tether.http.idempotency import complete_in
from tether.outbox import add_event


async def record(
    session: AsyncSession,
    out: BaseModel,
    *,
    event: str,
    aggregate: str,
    aggregate_id: int,
    tenant: str,
    status_code: int = 201,
) -> None:
    payload = out.model_dump(mode="json")
    await add_event(
        session,
        event,
        payload,
        aggregate_type=aggregate,
        aggregate_id=str(aggregate_id),
        tenant_id=tenant,
    )
    await complete_in(session, status_code=status_code, body=payload)
