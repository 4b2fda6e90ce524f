"""A queue worker through the pooler: items enqueued (alone and in a caller's transaction),
claimed, heartbeated and completed, every one exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import asyncpg
import pytest

from tether.queue import Claimed, NewItem
from tether.queue.postgres import PostgresQueue
from tether.queue.worker import Worker
from tether.store.postgres.pooler import connect_kwargs

pytestmark = pytest.mark.postgres

ITEMS = 120


async def test_worker_drains_every_item(
    pooled_dsn: str, problems_logged: Callable[[], list[str]]
) -> None:
    queue = await PostgresQueue.connect(pooled_dsn, pooler_mode="transaction", queue="mail")
    caller = await asyncpg.connect(pooled_dsn, **connect_kwargs("transaction"))
    try:
        await queue.enqueue([NewItem({"n": n}) for n in range(ITEMS // 2)])
        async with caller.transaction():
            await queue.enqueue([NewItem({"n": n}) for n in range(ITEMS // 2, ITEMS)], tx=caller)

        seen: list[int] = []

        async def handle(item: Claimed) -> None:
            seen.append(item.item.payload["n"])

        workers = [
            Worker(queue, handle, name=f"w{n}", batch=10, lease=timedelta(seconds=30))
            for n in range(3)
        ]
        while sum(await asyncio.gather(*(w.run_once() for w in workers))):
            pass
        assert sorted(seen) == list(range(ITEMS))
        assert sum(w.completed for w in workers) == ITEMS
        assert sum(w.failed + w.lost for w in workers) == 0
        stats = await queue.stats()
        assert stats.pending == stats.claimed == stats.dead == 0
    finally:
        await caller.close()
        await queue.close()
    assert problems_logged() == []
