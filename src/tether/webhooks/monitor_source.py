"""Dead webhook deliveries for the dead-letter monitor (:mod:`tether.ops.deadletters`).

Satisfies its ``DeadLetterSource`` protocol (``name``, ``async dead_count()``) and, like the
outbox's source, reports the age of the oldest pending delivery.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from tether.queue.postgres import PostgresQueue
from tether.webhooks.table import DELIVERIES


class DeliveriesDeadLetterSource:
    def __init__(self, pool: asyncpg.Pool, *, name: str = "webhooks") -> None:
        self.name = name
        self._engine = PostgresQueue(pool, spec=DELIVERIES, queue=None)
        self._age: timedelta | None = None

    async def dead_count(self) -> int:
        stats = await self._engine.stats()  # one query gives both figures
        self._age = stats.oldest_pending_age
        return stats.dead

    async def oldest_pending_age(self) -> timedelta | None:
        """As of the last :meth:`dead_count` (the monitor calls that first)."""
        return self._age


__all__ = ["DeliveriesDeadLetterSource"]
