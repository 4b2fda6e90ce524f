"""The worker loop, driven step by step on an in-memory SQLite queue with a pinned clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tether.core.backoff import RetryPolicy
from tether.core.clock import FrozenClock
from tether.core.errors import ConfigError
from tether.queue import Claimed, ItemState, NewItem
from tether.queue.sqlite import SqliteQueue
from tether.queue.worker import Defer, Worker

LEASE = timedelta(seconds=30)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def queue(clock: FrozenClock) -> AsyncIterator[SqliteQueue]:
    q = await SqliteQueue.connect(":memory:", clock=clock, keep_done=True)
    yield q
    await q.close()


async def test_run_once_completes_handled_items(queue: SqliteQueue) -> None:
    seen: list[object] = []

    async def handler(c: Claimed) -> None:
        seen.append(c.item.payload)

    await queue.enqueue([NewItem(i) for i in range(3)])
    worker = Worker(queue, handler, batch=2, lease=LEASE, name="w")
    assert await worker.run_once() == 2
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    assert seen == [0, 1, 2] and worker.completed == 3
    assert (await queue.stats()).done == 3


async def test_a_raising_handler_fails_the_item_with_its_error(queue: SqliteQueue) -> None:
    async def handler(c: Claimed) -> None:
        raise RuntimeError(f"cannot do {c.item.payload}")

    [item_id] = await queue.enqueue([NewItem("it")])
    policy = RetryPolicy(max_attempts=2, base=timedelta(seconds=1), jitter=False)
    worker = Worker(queue, handler, lease=LEASE, policy=policy)
    await worker.run_once()
    item = await queue.get(item_id)
    assert (item.state, item.last_error) == (ItemState.PENDING, "RuntimeError: cannot do it")
    queue.clock.advance(1)  # type: ignore[attr-defined]
    await worker.run_once()
    assert (await queue.get(item_id)).state is ItemState.DEAD
    assert worker.failed == 2


async def test_a_result_after_losing_the_lease_is_discarded(
    queue: SqliteQueue, clock: FrozenClock
) -> None:
    async def slow_handler(c: Claimed) -> None:
        # While this handler "hangs", its lease runs out and someone else takes the item.
        clock.advance(LEASE)
        [taken] = await queue.claim(1, lease=LEASE, worker="other")
        assert taken.id == c.id

    await queue.enqueue([NewItem("x")])
    worker = Worker(queue, slow_handler, lease=LEASE)
    await worker.run_once()
    assert (worker.lost, worker.completed) == (1, 0)
    [item] = await queue.list()
    assert (item.state, item.worker) == (ItemState.CLAIMED, "other")


async def test_heartbeat_keeps_a_slow_items_lease(queue: SqliteQueue, clock: FrozenClock) -> None:
    lease = timedelta(milliseconds=60)  # the heartbeat task runs every 20 ms of real time
    [item_id] = await queue.enqueue([NewItem("slow")])

    async def handler(c: Claimed) -> None:
        clock.advance(1)
        deadline = asyncio.get_running_loop().time() + 5
        while (await queue.get(item_id)).available_at != clock.now() + lease:
            assert asyncio.get_running_loop().time() < deadline, "no heartbeat arrived"
            await asyncio.sleep(0.005)

    worker = Worker(queue, handler, lease=lease)
    assert await worker.run_once() == 1
    assert worker.completed == 1


async def test_run_stops_on_the_stop_event_and_wakes_on_demand(queue: SqliteQueue) -> None:
    handled = asyncio.Event()

    async def handler(c: Claimed) -> None:
        handled.set()

    worker = Worker(queue, handler, lease=LEASE, poll_interval=60)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0)  # let it go idle (a 60 s poll)
    await queue.enqueue([NewItem("now")])
    worker.wake()
    await asyncio.wait_for(handled.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)


def test_worker_settings_are_checked(queue: SqliteQueue) -> None:
    async def handler(c: Claimed) -> None:
        return None

    with pytest.raises(ConfigError):
        Worker(queue, handler, batch=0)
    with pytest.raises(ConfigError):
        Worker(queue, handler, lease=timedelta(0))


async def test_idle_signal_tells_when_the_queue_is_drained(queue: SqliteQueue) -> None:
    seen: list[object] = []

    async def handler(c: Claimed) -> None:
        seen.append(c.item.payload)

    await queue.enqueue([NewItem(i) for i in range(25)])
    worker = Worker(queue, handler, batch=10, lease=LEASE, poll_interval=60)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(worker.idle.wait(), 5)
    assert seen == list(range(25)) and worker.batches == 3
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_a_handler_can_defer_its_item_without_spending_an_attempt(
    queue: SqliteQueue, clock: FrozenClock
) -> None:
    calls: list[int] = []

    async def handler(c: Claimed) -> None:
        calls.append(c.item.attempts)
        if len(calls) < 3:
            raise Defer(delay=timedelta(seconds=5), reason="endpoint down")

    [item_id] = await queue.enqueue([NewItem("hook", max_attempts=1)])
    worker = Worker(queue, handler, lease=LEASE)
    for _ in range(3):
        assert await worker.run_once() == 1
        assert await worker.run_once() == 0  # not due yet
        clock.advance(5)
    assert calls == [1, 1, 1]  # one attempt allowed, never spent by deferring
    assert (worker.deferred, worker.completed, worker.failed) == (2, 1, 0)
    item = await queue.get(item_id)
    assert (item.state, item.last_error, item.errors) == (ItemState.DONE, "endpoint down", ())


async def test_an_invalid_defer_fails_the_item_and_names_the_problem(queue: SqliteQueue) -> None:
    async def handler(c: Claimed) -> None:
        raise Defer(reason="no time given")

    [item_id] = await queue.enqueue([NewItem("x")])
    worker = Worker(queue, handler, lease=LEASE)
    await worker.run_once()
    item = await queue.get(item_id)
    assert worker.failed == 1 and item.attempts == 1
    assert "invalid Defer: defer takes exactly one of until=" in (item.last_error or "")
