"""The delivery log: search deliveries and their attempts, replay one, recover an endpoint.

Deliveries are work items, so listing, counting and replaying dead ones go through the engine's
admin operations (:class:`tether.queue.postgres.PostgresQueue` over the deliveries table);
every call names the tenant, which becomes a filter on ``tenant_id``, so one tenant never sees
or replays another's. A replay keeps the delivery's id, so the receiver gets the same
``webhook-id`` again and can tell it is a repeat.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from tether.core.clock import SYSTEM_CLOCK, Clock
from tether.core.errors import NotFoundError
from tether.queue.ports import Item, ItemFilter, ItemState
from tether.queue.postgres import PostgresQueue
from tether.store.sqlfile import queries
from tether.webhooks.model import WebhookConfigError, check_tenant
from tether.webhooks.table import DELIVERIES

_Q = queries("tether.webhooks", "postgres")
OUTCOMES = ("ok", "retry", "dead")
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt as logged: never a request header or a secret, a bounded response."""

    id: int
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    attempt: int
    at: datetime
    outcome: str
    status_code: int | None
    latency_ms: float | None
    response: str | None
    error: str | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "delivery_id": str(self.delivery_id),
            "endpoint_id": str(self.endpoint_id),
            "event_id": str(self.event_id),
            "attempt": self.attempt,
            "at": self.at.isoformat(),
            "outcome": self.outcome,
            "status_code": self.status_code,
            "latency_ms": self.latency_ms,
            "response": self.response,
            "error": self.error,
        }


def delivery_public(item: Item) -> dict[str, Any]:
    x = item.extra
    return {
        "id": str(item.id),
        "webhook_id": f"msg_{item.id}",
        "endpoint_id": str(x["endpoint_id"]),
        "event_id": str(x["event_id"]),
        "event_type": x["event_type"],
        "priority": item.queue,
        "state": item.state.value,
        "attempts": item.attempts,
        "next_attempt_at": item.available_at.isoformat()
        if item.state is ItemState.PENDING
        else None,
        "last_error": item.last_error,
        "created_at": item.created_at.isoformat(),
        "finished_at": None if item.finished_at is None else item.finished_at.isoformat(),
    }


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise WebhookConfigError(f"limit must be 1..{MAX_LIMIT}, got {limit!r}")
    return limit


def _aware(label: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise WebhookConfigError(f"{label} must be timezone-aware (e.g. 2026-01-31T00:00:00Z)")
    return value


class DeliveryLog:
    def __init__(self, pool: asyncpg.Pool, *, clock: Clock | None = None) -> None:
        self.pool = pool
        self.clock = clock or SYSTEM_CLOCK
        # queue=None: an admin view over every priority.
        self.engine = PostgresQueue(pool, spec=DELIVERIES, queue=None, clock=self.clock)

    def _filter(
        self,
        tenant: str | None,
        *,
        endpoint_id: uuid.UUID | None = None,
        event_id: uuid.UUID | None = None,
        state: ItemState | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        ids: list[uuid.UUID] | None = None,
    ) -> ItemFilter:
        extra = {"tenant_id": check_tenant(tenant)}
        if endpoint_id is not None:
            extra["endpoint_id"] = str(endpoint_id)
        if event_id is not None:
            extra["event_id"] = str(event_id)
        if state is not None and state not in {s.value for s in ItemState}:
            raise WebhookConfigError(
                f"state {state!r} is invalid: use pending, claimed, done, dead"
            )
        return ItemFilter(
            ids=ids,
            state=None if state is None else ItemState(state),
            created_after=_aware("since", since),
            created_before=_aware("until", until),
            extra=extra,
        )

    async def deliveries(
        self,
        tenant: str | None,
        *,
        endpoint_id: uuid.UUID | None = None,
        event_id: uuid.UUID | None = None,
        state: ItemState | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Item]:
        """Deliveries of ``tenant``, oldest first, narrowed by each argument given."""
        f = self._filter(
            tenant, endpoint_id=endpoint_id, event_id=event_id, state=state, since=since,
            until=until,
        )  # fmt: skip
        return await self.engine.list(f, limit=_limit(limit), offset=max(offset, 0))

    async def delivery(self, tenant: str | None, delivery_id: uuid.UUID) -> Item:
        found = await self.engine.list(self._filter(tenant, ids=[delivery_id]), limit=1)
        if not found:
            raise NotFoundError(f"no webhook delivery {delivery_id} for this tenant")
        return found[0]

    async def attempts(
        self,
        tenant: str | None,
        *,
        endpoint_id: uuid.UUID | None = None,
        event_id: uuid.UUID | None = None,
        delivery_id: uuid.UUID | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Attempt]:
        """Attempts of ``tenant``, newest first."""
        if outcome is not None and outcome not in OUTCOMES:
            raise WebhookConfigError(f"outcome {outcome!r} is invalid: use ok, retry or dead")
        query = _Q["attempts_list"]
        values: dict[str, object] = {
            "tenant_id": check_tenant(tenant),
            "endpoint_id": endpoint_id,
            "event_id": event_id,
            "delivery_id": delivery_id,
            "outcome": outcome,
            "since": _aware("since", since),
            "until": _aware("until", until),
            "limit": _limit(limit),
        }
        rows = await self.pool.fetch(query.numbered, *query.args(values))
        return [Attempt(**{k: v for k, v in r.items() if k != "tenant_id"}) for r in rows]

    async def replay(self, tenant: str | None, delivery_id: uuid.UUID) -> None:
        """Send a finished delivery (done or dead) again, as soon as possible, with fresh
        attempts and the same ``webhook-id``."""
        query = _Q["delivery_replay"]
        values: dict[str, object] = {
            "id": delivery_id,
            "tenant_id": check_tenant(tenant),
            "now": self.clock.now(),
        }
        status = await self.pool.execute(query.numbered, *query.args(values))
        if status.endswith(" 0"):
            item = await self.delivery(tenant, delivery_id)  # NotFoundError when not theirs
            raise WebhookConfigError(
                f"delivery {delivery_id} is {item.state.value}: only done or dead deliveries "
                "are replayed (a pending one is sent anyway)"
            )

    async def recover(self, tenant: str | None, endpoint_id: uuid.UUID, since: datetime) -> int:
        """Replay every dead delivery of an endpoint created since ``since``; returns how many.
        Enable the endpoint first, or they are dead-lettered again."""
        f = self._filter(tenant, endpoint_id=endpoint_id, state=ItemState.DEAD, since=since)
        return await self.engine.replay(f)
