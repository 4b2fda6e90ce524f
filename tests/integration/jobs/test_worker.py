"""The worker: results, retries to the dead letter, timeouts (async cancelled, sync reported),
priorities, cancellation of a running job, graceful shutdown with no attempt spent."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import timedelta

import pytest

from tether.core.backoff import RetryPolicy
from tether.jobs import Defer, JobContext, JobRegistry, Jobs, JobWorker
from tether.queue import ItemState

FAST = RetryPolicy(max_attempts=3, base=timedelta(milliseconds=1), cap=timedelta(milliseconds=1))


async def wait_for(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_results_retries_and_dead_letters(jobs: Jobs, reg: JobRegistry) -> None:
    calls: list[int] = []

    @reg.job(name="add", retry=FAST, max_attempts=3)
    async def add(a: int, b: int = 1) -> dict[str, int]:
        return {"sum": a + b}

    @reg.job(name="flaky", retry=FAST, max_attempts=3)
    def flaky(n: int) -> str:  # sync: runs on a thread
        calls.append(n)
        if len(calls) < 2:
            raise RuntimeError("not yet")
        return "ok"

    @reg.job(name="doomed", retry=FAST, max_attempts=2)
    async def doomed() -> None:
        raise ValueError("always")

    ok = await jobs.enqueue("add", {"a": 2})
    fl = await jobs.enqueue("flaky", {"n": 1})
    dd = await jobs.enqueue("doomed")
    worker = JobWorker(jobs, concurrency=5)
    for _ in range(6):
        await worker.run_once()
        await asyncio.sleep(0.01)
    assert await jobs.store.result(ok.id) == {"sum": 3}  # type: ignore[arg-type]
    flaky_item = await jobs.store.engine.get(fl.id)  # type: ignore[arg-type]
    assert flaky_item.state is ItemState.DONE and flaky_item.attempts == 2
    assert [e.error for e in flaky_item.errors] == ["RuntimeError: not yet"]
    dead = await jobs.store.engine.get(dd.id)  # type: ignore[arg-type]
    assert dead.state is ItemState.DEAD and dead.attempts == 2
    assert dead.last_error == "ValueError: always"
    assert worker.stats.completed == 2 and worker.stats.dead == 1


async def test_priority_then_fifo(jobs: Jobs, reg: JobRegistry) -> None:
    order: list[str] = []

    @reg.job(name="note")
    async def note(tag: str) -> None:
        order.append(tag)

    for tag, prio in (("a", 0), ("b", 5), ("c", 0), ("d", 9)):
        await jobs.enqueue("note", {"tag": tag}, priority=prio)
    worker = JobWorker(jobs, concurrency=1)
    while await worker.run_once():
        pass
    assert order == ["d", "b", "a", "c"]


async def test_async_timeout_cancels_and_retries(jobs: Jobs, reg: JobRegistry) -> None:
    cancelled = asyncio.Event()

    @reg.job(name="hang", timeout=0.2, retry=FAST, max_attempts=2)
    async def hang() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    ref = await jobs.enqueue("hang")
    worker = JobWorker(jobs)
    await worker.run_once()
    item = await jobs.store.engine.get(ref.id)  # type: ignore[arg-type]
    assert cancelled.is_set() and item.state is ItemState.PENDING and item.attempts == 1
    assert "timeout" in (item.last_error or "")
    assert worker.stats.timed_out == 1


async def test_sync_job_ignoring_cancellation_is_reported_and_its_slot_reclaimed(
    jobs: Jobs, reg: JobRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    polite_saw_cancel = threading.Event()

    @reg.job(name="stubborn", timeout=0.2, retry=FAST, max_attempts=1)
    def stubborn() -> None:
        release.wait(30)  # ignores ctx.cancelled

    @reg.job(name="polite", timeout=0.2, retry=FAST, max_attempts=1)
    def polite(ctx: JobContext) -> None:
        if ctx.cancelled.wait(30):
            polite_saw_cancel.set()

    @reg.job(name="quick")
    def quick() -> str:
        return "done"

    caplog.set_level(logging.ERROR, "tether.jobs.worker")
    stub = await jobs.enqueue("stubborn")
    pol = await jobs.enqueue("polite")
    worker = JobWorker(jobs, concurrency=2)
    try:
        await worker.run_once()
        assert worker.runner.stuck == 1 and worker.stats.timed_out == 2
        assert polite_saw_cancel.is_set()
        assert "ignored cancellation" in caplog.text and str(stub.id) in caplog.text
        for ref in (stub, pol):
            assert (await jobs.store.engine.get(ref.id)).state is ItemState.DEAD  # type: ignore[arg-type]
        # The stuck thread holds no slot: both slots run new jobs.
        q1, q2 = await jobs.enqueue("quick"), await jobs.enqueue("quick")
        assert await worker.run_once() == 2
        assert await jobs.store.result(q1.id) == "done"  # type: ignore[arg-type]
        assert await jobs.store.result(q2.id) == "done"  # type: ignore[arg-type]
    finally:
        release.set()


async def test_cancel_reaches_a_running_job(jobs: Jobs, reg: JobRegistry) -> None:
    started = asyncio.Event()

    @reg.job(name="long")
    async def long() -> None:
        started.set()
        await asyncio.sleep(60)

    ref = await jobs.enqueue("long")
    worker = JobWorker(
        jobs, stale_after=timedelta(seconds=3), heartbeat_every=timedelta(milliseconds=100)
    )
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(started.wait(), 10)
        assert await jobs.store.cancel(ref.id)  # type: ignore[arg-type]
        await wait_for(lambda: _zero(worker))
        assert worker.stats.discarded == 1
    finally:
        stop.set()
        await running
    item = await jobs.store.engine.get(ref.id)  # type: ignore[arg-type]
    assert item.state is ItemState.DEAD and item.last_error == "cancelled by an operator"
    assert not await jobs.store.cancel(ref.id)  # type: ignore[arg-type]


async def _zero(worker: JobWorker) -> bool:
    return not worker._held


async def test_shutdown_finishes_within_grace_then_releases_without_an_attempt(
    jobs: Jobs, reg: JobRegistry
) -> None:
    started: list[str] = []

    @reg.job(name="short")
    async def short() -> str:
        started.append("short")
        await asyncio.sleep(0.3)
        return "finished"

    @reg.job(name="slow")
    async def slow() -> None:
        started.append("slow")
        await asyncio.sleep(60)

    @reg.job(name="later")
    async def later() -> None:
        raise Defer(delay=timedelta(hours=1), reason="not its turn")

    s = await jobs.enqueue("short")
    w = await jobs.enqueue("slow")
    d = await jobs.enqueue("later")
    worker = JobWorker(jobs, concurrency=5, grace=timedelta(seconds=1))
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await wait_for(lambda: _started(started, 2))
    stop.set()
    t0 = time.monotonic()
    await asyncio.wait_for(running, 10)
    assert time.monotonic() - t0 < 3
    assert await jobs.store.result(s.id) == "finished"  # type: ignore[arg-type]
    released = await jobs.store.engine.get(w.id)  # type: ignore[arg-type]
    assert released.state is ItemState.PENDING and released.attempts == 0
    assert released.errors == () and worker.stats.released == 1
    deferred = await jobs.store.engine.get(d.id)  # type: ignore[arg-type]
    assert deferred.state is ItemState.PENDING and deferred.attempts == 0
    assert deferred.last_error == "not its turn"


async def _started(started: list[str], n: int) -> bool:
    return len(started) >= n
