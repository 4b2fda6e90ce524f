"""Cron schedules: each tick enqueues its job once, however many workers are running.

Every worker computes the latest due tick of each schedule; the first to insert the row
(schedule, tick) into ``tether_job_ticks`` enqueues the job in the same transaction, so the
tick and its job commit together or not at all, and every other worker's insert finds the row.
A worker that wakes late fires every tick it missed since the last one it saw; ticks older
than the schedule's ``misfire`` are skipped (no catch-up after an outage).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from croniter import croniter

from tether.core.errors import StoreError, TetherError
from tether.core.ids import new_id
from tether.jobs.client import Jobs
from tether.jobs.registry import Schedule

log = logging.getLogger("tether.jobs.schedules")

MAX_SLEEP_S = 1.0
MAX_CATCH_UP = 100  # ticks fired in one pass after a late wake-up


def latest_tick(schedule: Schedule, now: datetime) -> datetime:
    """The most recent tick at or before ``now`` (croniter's get_prev is strictly before)."""
    tick: datetime = croniter(schedule.cron, now + timedelta(microseconds=1)).get_prev(datetime)
    return tick


class Scheduler:
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs
        self.fired = 0
        self._seen: dict[str, datetime] = {}

    async def run(self, schedules: Sequence[Schedule]) -> None:
        while True:
            await self.run_once(schedules)
            await asyncio.sleep(self._sleep(schedules))

    def _sleep(self, schedules: Sequence[Schedule]) -> float:
        now = self.jobs.store.clock.now()
        nxt = min(croniter(s.cron, now).get_next(datetime) for s in schedules)
        wait: float = (nxt - now).total_seconds()
        return min(max(wait, 0.01), MAX_SLEEP_S)

    async def run_once(self, schedules: Sequence[Schedule]) -> int:
        """Fire every due tick not seen yet; returns how many this worker enqueued."""
        now = self.jobs.store.clock.now()
        fired = 0
        for schedule in schedules:
            for tick in self._due(schedule, now):
                try:
                    if await self.fire(schedule, tick):
                        fired += 1
                except (StoreError, TetherError) as exc:
                    log.warning("schedule %s: tick %s not fired, will retry: %s", schedule.name,
                                tick, exc)  # fmt: skip
                    break
                self._seen[schedule.name] = tick
        self.fired += fired
        return fired

    def _due(self, schedule: Schedule, now: datetime) -> list[datetime]:
        """The latest tick on first sight; afterwards every tick since the last one seen (a
        loaded machine may wake this loop late), none older than ``misfire``."""
        latest = latest_tick(schedule, now)
        seen = self._seen.get(schedule.name)
        if seen is None:
            return [latest] if now - latest <= schedule.misfire else []
        ticks: list[datetime] = []
        cursor = croniter(schedule.cron, max(seen, now - schedule.misfire))
        while len(ticks) < MAX_CATCH_UP:
            tick: datetime = cursor.get_next(datetime)
            if tick > now:
                break
            ticks.append(tick)
        return ticks

    async def fire(self, schedule: Schedule, tick: datetime) -> bool:
        """Enqueue the tick's job if no worker did yet; True when this call did."""
        store = self.jobs.store
        job_id = new_id()
        async with store.pool.acquire() as conn, conn.transaction():
            if not await store.tick(conn, schedule.name, tick, job_id):
                return False
            await self.jobs.enqueue(
                schedule.job, schedule.args, tx=conn, queue=schedule.queue, id=job_id
            )
        log.info("schedule %s: tick %s enqueued job %s", schedule.name, tick, job_id)
        return True
