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
from tether.queue import ItemFilter, ItemState
from tether.queue.postgres import PostgresQueue


def _engine(pool: asyncpg.Pool, f: DeadFilter) -> PostgresQueue:
    return PostgresQueue(pool, spec=f.kind.spec, queue=None)


def bounded(f: DeadFilter, shown_at: datetime | None) -> ItemFilter:
    item_filter = f.item_filter()
    if shown_at is None:
        return item_filter
    before = item_filter.created_before
    cap = shown_at if before is None else min(before, shown_at)
    return dataclasses.replace(item_filter, created_before=cap)


async def count(pool: asyncpg.Pool, f: DeadFilter, shown_at: datetime | None = None) -> int:
    return await _engine(pool, f).count(bounded(f, shown_at), states=(ItemState.DEAD,))


async def replay(pool: asyncpg.Pool, f: DeadFilter, shown_at: datetime | None = None) -> int:
    return await _engine(pool, f).replay(bounded(f, shown_at))


async def purge(pool: asyncpg.Pool, f: DeadFilter, shown_at: datetime | None = None) -> int:
    item_filter = dataclasses.replace(bounded(f, shown_at), state=ItemState.DEAD)
    return await _engine(pool, f).purge(item_filter)
