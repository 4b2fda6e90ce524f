"""Cron schedules: exactly one job per tick across several workers, checked at definition."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from tether.core.errors import ConfigError
from tether.jobs import JobRegistry, Jobs, JobStore, JobWorker, UnknownJobError
from tether.jobs.schedules import latest_tick
from tether.queue.postgres import create_pool


async def test_each_tick_runs_once_across_workers(
    jobs: Jobs, reg: JobRegistry, jobs_dsn: str
) -> None:
    ran: list[datetime] = []

    @reg.job(name="tick")
    async def tick(label: str) -> None:
        ran.append(datetime.now(UTC))

    reg.schedule("* * * * * *", "tick", {"label": "every second"})  # seconds last
    pools = [await create_pool(jobs_dsn, max_size=3) for _ in range(3)]
    workers = [
        JobWorker(Jobs(JobStore(p), reg), name=f"w{i}", poll_interval=0.05)
        for i, p in enumerate(pools)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        await asyncio.sleep(3.2)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for p in pools:
            await p.close()
    rows = await jobs.store.pool.fetch("SELECT tick, job_id FROM tether_job_ticks ORDER BY tick")
    ticks = [r["tick"] for r in rows]
    assert 2 <= len(ticks) <= 5 and len(set(ticks)) == len(ticks)
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert all(g == timedelta(seconds=1) for g in gaps), ticks
    assert sum(w.scheduler.fired for w in workers if w.scheduler) == len(ticks)
    count = await jobs.store.pool.fetchval("SELECT count(*) FROM tether_jobs WHERE name = 'tick'")
    assert count == len(ticks) and len(ran) <= len(ticks)


def test_schedules_are_checked_when_declared(reg: JobRegistry) -> None:
    @reg.job(name="report")
    def report(day: str) -> None: ...

    with pytest.raises(ConfigError, match="not a cron expression"):
        reg.schedule("every day", "report", {"day": "x"})
    with pytest.raises(UnknownJobError, match="known jobs: report"):
        reg.schedule("0 * * * *", "reprot")
    with pytest.raises(Exception, match="day"):
        reg.schedule("0 * * * *", "report", {})
    reg.schedule("0 * * * *", "report", {"day": "x"})
    with pytest.raises(ConfigError, match="exists already"):
        reg.schedule("5 * * * *", "report", {"day": "y"})
    at = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert latest_tick(reg.schedules[0], at) == at
    assert latest_tick(reg.schedules[0], at + timedelta(minutes=59)) == at
