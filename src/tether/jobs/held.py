"""Claimed jobs kept under lease while a runner works on them (the hand-off runner's publish).

A claimed job whose lease runs out is taken for the job of a dead runner: stale-job recovery
puts it back in its queue and it is handed out again. So while jobs are held, one heartbeat
statement every ``every`` pushes the lease of each of them forward (the job worker's
``heartbeat_many``). A job missing from the heartbeat's answer was recovered, cancelled or
finished elsewhere: it is no longer held, and whoever holds it should leave it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta

from tether.core.errors import ConfigError, StoreError
from tether.core.waiting import wait_set
from tether.jobs.store import JobStore
from tether.queue import Claimed

log = logging.getLogger("tether.jobs.held")


def heartbeat_period(
    lease: timedelta, every: timedelta | None, *, lease_name: str = "the lease"
) -> timedelta:
    """``every``, or by default a third of the lease (at most 5 s); checked to be positive and
    shorter than the lease, or held jobs would be recovered between two heartbeats. The job
    worker (whose lease is ``stale_after``) and the hand-off runner both take it from here."""
    period = every if every is not None else min(timedelta(seconds=5), lease / 3)
    if not timedelta(0) < period < lease:
        raise ConfigError(
            f"heartbeat_every ({period}) must be positive and shorter than {lease_name} "
            f"({lease}), or held jobs would be recovered"
        )
    return period


class HeldJobs:
    """The jobs one runner holds, keyed by seq. ``beating()`` heartbeats them in the
    background for as long as it is entered (nested entries share one heartbeat)."""

    def __init__(self, store: JobStore, *, lease: timedelta, every: timedelta, owner: str) -> None:
        self.store = store
        self.lease = lease
        self.every = every
        self.owner = owner
        self._jobs: dict[int, Claimed] = {}
        self._entered = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, batch: Iterable[Claimed]) -> None:
        for c in batch:
            self._jobs[c.item.seq] = c

    def holds(self, c: Claimed) -> bool:
        """False once the job was let go or found recovered or cancelled elsewhere."""
        return self._jobs.get(c.item.seq) is c

    def let_go(self, c: Claimed) -> None:
        """Stop heartbeating ``c``: called just before its outcome is written, so a heartbeat
        running meanwhile does not take the settled job for one lost."""
        if self.holds(c):
            del self._jobs[c.item.seq]

    def __len__(self) -> int:
        return len(self._jobs)

    async def beat(self) -> None:
        """One heartbeat for every held job; forget those whose lease is gone."""
        batch = list(self._jobs.values())
        if not batch:
            return
        try:
            alive = await self.store.heartbeat_many(batch, self.lease)
        except StoreError as exc:
            log.warning("%s: heartbeat failed (held jobs may be recovered): %s", self.owner, exc)
            return
        for c in batch:
            if c.item.seq not in alive and self.holds(c):
                del self._jobs[c.item.seq]
                log.warning("%s: job %s (%s) lost its lease (recovered or cancelled elsewhere)",
                            self.owner, c.id, c.item.extra.get("name"))  # fmt: skip

    async def _beating(self) -> None:
        while True:
            if await wait_set(self._stop, self.every.total_seconds()):
                return
            await self.beat()

    @contextlib.asynccontextmanager
    async def beating(self) -> AsyncIterator[None]:
        self._entered += 1
        if self._entered == 1:
            self._stop.clear()
            self._task = asyncio.create_task(self._beating(), name=f"{self.owner} heartbeat")
        try:
            yield
        finally:
            self._entered -= 1
            if self._entered == 0 and self._task is not None:
                # Stopped by an event, not cancelled: a heartbeat statement in flight finishes.
                self._stop.set()
                task, self._task = self._task, None
                await task


__all__ = ["HeldJobs", "heartbeat_period"]
