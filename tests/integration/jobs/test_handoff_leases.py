"""The hand-off runner holds its jobs under lease like a worker: a publish slower than the lease
is heartbeated through (not recovered and handed out twice), a job cancelled while an earlier
round publishes is left out, and while serving a full batch's completion claims the next
batch in one statement, which is given back unspent at stop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from tests.support.scripted_sink import ScriptedSink
from tether.core.envelope import Event
from tether.core.errors import ConfigError
from tether.jobs import JobRegistry, Jobs
from tether.jobs.handoff import HandoffRunner
from tether.jobs.store import Recovered
from tether.sinks.base import Outcome

LEASE = timedelta(seconds=0.4)
BEAT = timedelta(seconds=0.1)


def define(reg: JobRegistry, *queues: str) -> None:
    for queue in queues:

        @reg.job(name=f"send-{queue}", queue=queue, handoff=True)
        async def send(n: int) -> None:
            raise AssertionError("a hand-off queue's jobs never run here")


class SlowSink(ScriptedSink):
    """Publishes after ``delay`` seconds (its first ``slow_calls`` calls only)."""

    def __init__(self, delay: float, slow_calls: int = 1_000) -> None:
        super().__init__()
        self.delay = delay
        self.slow_calls = slow_calls
        self.started = asyncio.Event()

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        self.started.set()
        if len(self.calls) < self.slow_calls:
            await asyncio.sleep(self.delay)
        return await super().publish(events)


async def test_a_publish_slower_than_the_lease_is_not_recovered(
    jobs: Jobs, reg: JobRegistry
) -> None:
    define(reg, "billing")
    ref = await jobs.enqueue("send-billing", {"n": 1})
    sink = SlowSink(delay=3 * LEASE.total_seconds())
    runner = HandoffRunner(jobs, sink, queues=["billing"], lease=LEASE, heartbeat_every=BEAT)
    rescued: list[Recovered] = []
    publishing = asyncio.create_task(runner.run_once())

    async def rescue() -> None:  # another runner's or worker's stale-job recovery, busy
        while not publishing.done():
            rescued.extend(await jobs.store.recover())
            await asyncio.sleep(0.05)

    async with asyncio.timeout(10):
        await asyncio.gather(publishing, rescue())
    assert rescued == []
    assert [e.id for e in sink.received] == [ref.id]  # published once
    assert ref.id is not None
    item = await jobs.store.engine.get(ref.id)
    assert (item.state.value, item.attempts) == ("done", 1)
    assert runner.stats.published == 1 and runner.stats.lost == 0


async def test_a_job_cancelled_during_an_earlier_round_is_not_published(
    jobs: Jobs, reg: JobRegistry
) -> None:
    define(reg, "billing")
    first = await jobs.enqueue("send-billing", {"n": 1})
    second = await jobs.enqueue("send-billing", {"n": 2})  # same key (the queue): next round
    sink = SlowSink(delay=0.6, slow_calls=1)
    runner = HandoffRunner(jobs, sink, queues=["billing"], lease=LEASE, heartbeat_every=BEAT)
    publishing = asyncio.create_task(runner.run_once())
    async with asyncio.timeout(10):
        await sink.started.wait()
        assert second.id is not None and await jobs.store.cancel(second.id)
        assert await publishing == 2
    assert [e.id for e in sink.received] == [first.id]
    assert (await jobs.store.engine.get(second.id)).state.value == "dead"  # as cancelled
    assert runner.stats.published == 1 and runner.stats.lost == 1


async def test_serving_claims_the_next_batch_with_the_completions_and_gives_it_back_at_stop(
    jobs: Jobs, reg: JobRegistry
) -> None:
    define(reg, "a", "b")
    refs = [await jobs.enqueue("send-a", {"n": n}) for n in range(3)]
    last = await jobs.enqueue("send-b", {"n": 9})
    stop = asyncio.Event()
    sink = ScriptedSink()

    def stop_at_b(event: Event) -> Outcome | None:
        if event.topic == "b":
            stop.set()  # queue a's next batch is claimed by now, never published
        return None

    sink.fail = stop_at_b
    statements: list[tuple[str, str]] = []
    store = jobs.store
    claim, settle_and_claim = store.claim, store.settle_and_claim

    async def counted_claim(queue: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(("claim", queue))
        return await claim(queue, *args, **kwargs)

    async def counted_settle(finished: Any, **kwargs: Any) -> Any:
        statements.append(("settle_and_claim", kwargs["queue"]))
        return await settle_and_claim(finished, **kwargs)

    store.claim = counted_claim  # type: ignore[method-assign]
    store.settle_and_claim = counted_settle  # type: ignore[method-assign]
    runner = HandoffRunner(jobs, sink, queues=["a", "b"], batch=2, ordered=False)
    async with asyncio.timeout(10):
        await runner.run(stop)
    assert statements == [("claim", "a"), ("settle_and_claim", "a"), ("claim", "b")]
    states = [(await store.engine.get(r.id)) for r in refs if r.id is not None]
    assert [(i.state.value, i.attempts) for i in states] == [
        ("done", 1), ("done", 1), ("pending", 0)
    ]  # fmt: skip
    assert last.id is not None and (await store.engine.get(last.id)).state.value == "done"
    assert [e.payload for e in sink.received] == [{"n": 0}, {"n": 1}, {"n": 9}]
    assert runner.stats.published == 3 and runner.stats.deferred == 1  # the one given back


def test_the_heartbeat_must_be_shorter_than_the_lease(jobs: Jobs, reg: JobRegistry) -> None:
    define(reg, "billing")
    with pytest.raises(ConfigError, match="shorter than the lease"):
        HandoffRunner(jobs, ScriptedSink(), queues=["billing"], lease=LEASE, heartbeat_every=LEASE)
