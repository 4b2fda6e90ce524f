"""Stale-job recovery as lease expiry: the message in the history, the attempt it costs (a
poison job ends dead), fencing of the zombie's late result, the daily count and the alert."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, timedelta
from typing import Any

import pytest

from tether.jobs import RECOVERED, JobContext, JobRegistry, Jobs, JobWorker
from tether.jobs.monitor_source import JobsDeadLetterSource
from tether.ops.deadletters import DeadLetterSource, PendingAgeSource
from tether.queue import ItemState

STALE = timedelta(milliseconds=300)


async def test_stale_job_is_requeued_with_the_message_and_counted(
    jobs: Jobs, reg: JobRegistry
) -> None:
    @reg.job(name="work")
    async def work() -> str:
        return "ok"

    ref = await jobs.enqueue("work")
    # A worker claims it and dies: nothing heartbeats.
    assert len(await jobs.store.claim("default", 1, lease=STALE, worker="dead:1")) == 1
    worker = JobWorker(jobs, stale_after=STALE, heartbeat_every=timedelta(milliseconds=100))
    assert await worker.recover_once() == []  # not stale yet
    await asyncio.sleep(STALE.total_seconds() + 0.05)
    rescued = await worker.recover_once()
    assert [(r.id, r.dead, r.worker) for r in rescued] == [(ref.id, False, "dead:1")]
    item = await jobs.store.engine.get(ref.id)  # type: ignore[arg-type]
    assert item.state is ItemState.PENDING and item.attempts == 1
    assert [(e.attempt, e.error) for e in item.errors] == [(1, RECOVERED)]
    assert await worker.run_once() == 1
    done = await jobs.store.engine.get(ref.id)  # type: ignore[arg-type]
    assert done.state is ItemState.DONE and done.attempts == 2
    today = jobs.store.clock.now().date()
    assert await jobs.store.recovered_on(today) == 1
    assert await jobs.store.recoveries(date(2000, 1, 1)) == [(today, "default", 1)]


async def test_poison_job_ends_dead_instead_of_looping(jobs: Jobs, reg: JobRegistry) -> None:
    @reg.job(name="poison", max_attempts=3)
    async def poison() -> None: ...

    ref = await jobs.enqueue("poison")
    worker = JobWorker(jobs, stale_after=STALE, heartbeat_every=timedelta(milliseconds=100))
    states = []
    for n in range(3):  # each run kills its worker: claimed, never heartbeated
        assert len(await jobs.store.claim("default", 1, lease=STALE, worker=f"w{n}")) == 1
        await asyncio.sleep(STALE.total_seconds() + 0.05)
        states.append([r.dead for r in await worker.recover_once()])
    assert states == [[False], [False], [True]]
    item = await jobs.store.engine.get(ref.id)  # type: ignore[arg-type]
    assert item.state is ItemState.DEAD and item.attempts == 3
    assert [e.error for e in item.errors] == [RECOVERED] * 3
    assert await jobs.store.claim("default", 1, lease=STALE, worker="w") == []
    # The dead-letter monitor's source counts it; an operator's cancellation is not counted.
    source = JobsDeadLetterSource(jobs.store)
    assert isinstance(source, DeadLetterSource) and isinstance(source, PendingAgeSource)
    other = await jobs.enqueue("poison")
    assert await source.oldest_pending_age() is not None
    await jobs.store.cancel(other.id)  # type: ignore[arg-type]
    assert (source.name, await source.dead_count()) == ("jobs", 1)


async def test_zombie_cannot_complete_the_rescued_job(
    jobs: Jobs, reg: JobRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    await jobs.store.pool.execute("CREATE TABLE effects (job uuid, worker text)")
    wake: dict[str, asyncio.Event] = {"zombie": asyncio.Event()}

    @reg.job(name="charge", transactional=True)
    async def charge(ctx: JobContext, who: str) -> str:
        await ctx.tx.execute("INSERT INTO effects VALUES ($1, $2)", ctx.id, who)
        if who == "zombie":
            await wake["zombie"].wait()
        return who

    @reg.job(name="plain")
    async def plain(ctx: JobContext) -> None:
        if ctx.attempt == 1:
            await wake["zombie"].wait()

    caplog.set_level(logging.WARNING, "tether.jobs.worker")
    ref = await jobs.enqueue("charge", {"who": "zombie"})
    plain_ref = await jobs.enqueue("plain")
    zombie = JobWorker(jobs, name="zombie", stale_after=STALE,
                       heartbeat_every=timedelta(milliseconds=100))  # fmt: skip
    hung = asyncio.create_task(zombie.run_once())  # run_once sends no heartbeats: it "hangs"
    await asyncio.sleep(STALE.total_seconds() + 0.1)
    rescuer = JobWorker(jobs, name="rescuer", stale_after=timedelta(seconds=30))
    assert {r.id for r in await rescuer.recover_once()} == {ref.id, plain_ref.id}
    # The rescuer runs it again (its payload says "zombie", so make it finish at once).
    wake["zombie"].set()
    wake["zombie"] = asyncio.Event()
    wake["zombie"].set()
    await rescuer.run_once()
    await asyncio.wait_for(hung, 10)
    assert zombie.stats.discarded == 2 and zombie.stats.completed == 0
    assert "late result discarded" in caplog.text
    effects = await jobs.store.pool.fetch("SELECT worker FROM effects")
    assert len(effects) == 1  # the zombie's transaction rolled back
    item = await jobs.store.engine.get(ref.id)  # type: ignore[arg-type]
    assert item.state is ItemState.DONE and item.worker == "rescuer"


async def test_alert_when_recoveries_pass_the_daily_threshold(
    jobs: Jobs, reg: JobRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    @reg.job(name="work")
    async def work() -> None: ...

    alerts: list[Any] = []

    async def hook(day: date, count: int) -> None:
        alerts.append((day, count))

    worker = JobWorker(jobs, stale_after=STALE, heartbeat_every=timedelta(milliseconds=100),
                       recovery_alert_threshold=2, on_recovery_alert=hook)  # fmt: skip
    caplog.set_level(logging.ERROR, "tether.jobs.worker")
    for batch in (2, 2):
        for _ in range(batch):
            await jobs.enqueue("work")
        await jobs.store.claim("default", batch, lease=STALE, worker="gone")
        await asyncio.sleep(STALE.total_seconds() + 0.05)
        await worker.recover_once()
    today = jobs.store.clock.now().date()
    assert alerts == [(today, 4)]  # once a day, when 4 > 2
    assert caplog.text.count("ALERT: 4 jobs recovered from stale state today") == 1
