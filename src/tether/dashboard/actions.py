"""Replay and purge, through each part's own engine adapter (:class:`tether.queue` over the
outbox's, the jobs' and the webhook deliveries' table specs), never SQL of the dashboard's.

A bulk action acts on the filter the operator confirmed, bounded to rows created before the
confirmation page was shown: a row dead-lettered later with a newer creation time is not
swept along unseen.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import asyncpg

from tether.dashboard.kinds import DeadFilter
from tether.dashboard.queries import Count, estimate
from tether.queue import ItemFilter, ItemState
from tether.queue.postgres import PostgresQueue
from tether.queue.spec import where
from tether.store.sqlfile import Query


def _engine(pool: asyncpg.Pool, f: DeadFilter) -> PostgresQueue:
    return PostgresQueue(pool, spec=f.kind.spec, queue=None)


def bounded(f: DeadFilter, shown_at: datetime | None) -> ItemFilter:
    item_filter = f.item_filter()
    if shown_at is None:
        return item_filter
    before = item_filter.created_before
    cap = shown_at if before is None else min(before, shown_at)
    return dataclasses.replace(item_filter, created_before=cap)


COUNT_BUDGET_MS = 150
"""How long the confirmation page may spend counting exactly. Counting what a filter matches
reads every dead row it could match (no index serves a substring of the error text): on a
million dead letters that takes most of a second, so past the budget the page shows the
planner's estimate instead, marked as such (``≈``)."""


async def count(
    pool: asyncpg.Pool, f: DeadFilter, shown_at: datetime | None = None,
    budget_ms: int = COUNT_BUDGET_MS,
) -> Count:  # fmt: skip
    """How many dead letters the action would touch: exact within the time budget, else the
    planner's estimate. The same filter clause as the engine's replay and purge."""
    spec = f.kind.spec
    clause, params = where(
        spec, bounded(f, shown_at), "postgres", queue=None, states=(ItemState.DEAD,)
    )
    query = Query("confirm_count", f"SELECT count(*) FROM {spec.name} WHERE {clause}")
    args = query.args(params)
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL statement_timeout = {int(budget_ms)}")
                return Count(int(await conn.fetchval(query.numbered, *args)), True)
        except asyncpg.QueryCanceledError:
            sample = Query("confirm_rows", f"SELECT 1 FROM {spec.name} WHERE {clause}")
            return Count(await estimate(conn, sample.numbered, *args), False)


async def replay(pool: asyncpg.Pool, f: DeadFilter, shown_at: datetime | None = None) -> int:
    return await _engine(pool, f).replay(bounded(f, shown_at))


async def purge(pool: asyncpg.Pool, f: DeadFilter, shown_at: datetime | None = None) -> int:
    item_filter = dataclasses.replace(bounded(f, shown_at), state=ItemState.DEAD)
    return await _engine(pool, f).purge(item_filter)
