"""Broker hand-off through the in-memory scripted sink: every sink answer settles the job by
the one lifecycle (done, retry with the job's backoff, dead, deferred without an attempt), and
batches are published in rounds of distinct partition keys."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from tests.support.scripted_sink import ScriptedSink
from tether.core.backoff import RetryPolicy
from tether.core.errors import ConfigError, SinkUnavailableError
from tether.jobs import JobRegistry, Jobs
from tether.jobs.handoff import HandoffRunner
from tether.sinks.base import Outcome


def define(reg: JobRegistry) -> None:
    @reg.job(name="bill", queue="billing", max_attempts=3, handoff=True,
             retry=RetryPolicy(max_attempts=3, base=timedelta(seconds=30), jitter=False))  # fmt: skip
    async def bill(account: int) -> None:
        raise AssertionError("a hand-off queue's jobs never run here")


async def state(jobs: Jobs, id: uuid.UUID | None) -> tuple[str, int, str | None]:
    assert id is not None
    item = await jobs.store.engine.get(id)
    return item.state.value, item.attempts, item.last_error


async def test_each_outcome_settles_by_the_one_lifecycle(jobs: Jobs, reg: JobRegistry) -> None:
    define(reg)
    refs = [await jobs.enqueue("bill", {"account": n}) for n in range(5)]
    ids = [r.id for r in refs]
    sink = ScriptedSink()
    answers = {
        1: Outcome.failed("broker hiccup"),
        2: Outcome.failed("refused: bad subject", retryable=False),
        3: Outcome.deferred("slow down", 120),
    }
    sink.fail = lambda e: answers.get(e.payload["account"])
    runner = HandoffRunner(jobs, sink, queues=["billing"])
    assert await runner.run_once() == 5
    assert [(e.id, e.type, e.topic, e.payload) for e in sink.received] == [
        (ids[0], "bill", "billing", {"account": 0}), (ids[4], "bill", "billing", {"account": 4})
    ]  # fmt: skip
    assert await state(jobs, ids[0]) == ("done", 1, None)
    assert await state(jobs, ids[1]) == ("pending", 1, "broker hiccup")
    item = await jobs.store.engine.get(ids[1])  # type: ignore[arg-type]
    assert item.available_at > item.created_at + timedelta(seconds=10)  # the job's backoff
    assert await state(jobs, ids[2]) == ("dead", 1, "refused: bad subject")
    assert (await state(jobs, ids[3]))[:2] == ("pending", 0)  # deferred: no attempt spent
    assert runner.stats.published == 2 and runner.stats.dead == 1
    assert runner.stats.retried == 1 and runner.stats.deferred == 1


async def test_broker_down_defers_every_job_without_an_attempt(
    jobs: Jobs, reg: JobRegistry
) -> None:
    define(reg)
    refs = [await jobs.enqueue("bill", {"account": n}) for n in range(3)]
    sink = ScriptedSink()
    sink.unavailable = True
    runner = HandoffRunner(jobs, sink, queues=["billing"], unavailable_wait=timedelta(0))
    for _ in range(4):  # far more tries than max_attempts: none is spent
        with pytest.raises(SinkUnavailableError):
            await runner.run_once()
    assert [(await state(jobs, r.id))[:2] for r in refs] == [("pending", 0)] * 3
    sink.unavailable = False
    assert await runner.run_once() == 3
    assert [(await state(jobs, r.id))[:2] for r in refs] == [("done", 1)] * 3


async def test_retries_end_dead_after_max_attempts_and_a_raising_sink_costs_attempts(
    jobs: Jobs, reg: JobRegistry
) -> None:
    define(reg)
    ref = await jobs.enqueue("bill", {"account": 1})
    sink = ScriptedSink()
    sink.raise_for = lambda e: True
    runner = HandoffRunner(jobs, sink, queues=["billing"])
    for attempt in range(1, 4):
        await jobs.store.pool.execute("UPDATE tether_jobs SET available_at = now()")
        assert await runner.run_once() == 1
        got = await state(jobs, ref.id)
        assert got[1] == attempt and "RuntimeError: poison event" in (got[2] or "")
    assert (await state(jobs, ref.id))[0] == "dead"


async def test_one_call_never_holds_two_jobs_of_one_partition_key(
    jobs: Jobs, reg: JobRegistry
) -> None:
    define(reg)
    await jobs.enqueue("bill", {"account": 1}, dedup_key="acct-1")
    for n in range(3):
        await jobs.enqueue("bill", {"account": 10 + n})  # key: the queue
    sink = ScriptedSink()
    runner = HandoffRunner(jobs, sink, queues=["billing"])
    assert await runner.run_once() == 4
    assert len(sink.calls) == 3  # the queue's key three times: three calls
    for call in sink.calls:
        keys = [e.partition_key for e in call]
        assert len(keys) == len(set(keys))
    assert [e.payload["account"] for e in sink.received if e.partition_key == "billing"] == [
        10, 11, 12
    ]  # fmt: skip


async def test_run_loop_hands_off_and_stops(jobs: Jobs, reg: JobRegistry) -> None:
    define(reg)
    sink = ScriptedSink()
    runner = HandoffRunner(jobs, sink, queues=["billing"], poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await jobs.enqueue("bill", {"account": 7})
        async with asyncio.timeout(5):
            while not sink.received:
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert runner.stats.published == 1


def test_bad_settings_are_named(jobs: Jobs) -> None:
    with pytest.raises(ConfigError, match="at least one queue"):
        HandoffRunner(jobs, ScriptedSink(), queues=[])
    with pytest.raises(ConfigError, match="batch"):
        HandoffRunner(jobs, ScriptedSink(), queues=["q"], batch=0)


async def test_unordered_gives_each_job_its_own_key_and_one_call(
    jobs: Jobs, reg: JobRegistry
) -> None:
    define(reg)
    refs = [await jobs.enqueue("bill", {"account": n}) for n in range(4)]
    sink = ScriptedSink()
    runner = HandoffRunner(jobs, sink, queues=["billing"], ordered=False)
    assert await runner.run_once() == 4
    assert len(sink.calls) == 1
    assert sorted(e.partition_key or "" for e in sink.received) == sorted(str(r.id) for r in refs)


def test_a_queue_is_served_by_workers_or_by_a_handoff_runner_never_both(
    jobs: Jobs, reg: JobRegistry
) -> None:
    from tether.jobs.worker import JobWorker

    define(reg)

    @reg.job(name="mail", queue="emails")
    async def mail(to: str) -> None: ...

    with pytest.raises(ConfigError, match="'billing' holds a hand-off job"):

        @reg.job(name="refund", queue="billing")
        async def refund(account: int) -> None: ...

    assert set(JobWorker(jobs).queues) == {"emails"}  # not the hand-off queue
    with pytest.raises(ConfigError, match="tether jobs handoff --queue billing"):
        JobWorker(jobs, queues=["billing"])
    with pytest.raises(ConfigError, match="'emails' holds jobs a worker runs"):
        HandoffRunner(jobs, ScriptedSink(), queues=["emails"])
