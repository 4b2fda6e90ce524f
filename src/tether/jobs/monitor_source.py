"""The jobs' dead-letter count for the dead-letter monitor (``tether.ops.deadletters``).

Satisfies its ``DeadLetterSource`` protocol (``name``, ``async dead_count()``): dead jobs,
leaving out those an operator cancelled on purpose; and its optional ``PendingAgeSource``
(``oldest_pending_age``), the age of the oldest queued job.
"""

from __future__ import annotations

from datetime import timedelta

from tether.jobs.store import JobStore


class JobsDeadLetterSource:
    def __init__(self, store: JobStore, *, name: str = "jobs") -> None:
        self.name = name
        self._store = store

    async def dead_count(self) -> int:
        return await self._store.dead_count()

    async def oldest_pending_age(self) -> timedelta | None:
        return (await self._store.engine.stats()).oldest_pending_age


__all__ = ["JobsDeadLetterSource"]
