"""A consumer given a runner registry registers while it runs, beats its outcome counters,
and is marked stopped when its loop ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tests.unit.consume.test_runner import FakeInbox
from tether.consume import Consumer
from tether.consume.memory import MemorySource
from tether.core.envelope import Event, make_event
from tether.ops.runners import MemoryRunnerRegistry


@contextlib.asynccontextmanager
async def begin() -> AsyncIterator[object]:
    yield object()


async def test_a_consumer_beats_its_counts_and_stops() -> None:
    source, registry = MemorySource(), MemoryRunnerRegistry()

    async def handler(event: Event, tx: object) -> None:
        return None

    consumer = Consumer(
        source,
        handler,
        transaction=begin,
        inbox=FakeInbox(),
        wait=0.05,
        registry=registry,
        registry_interval_s=0.02,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    for _ in range(3):
        source.publish(make_event("T", {}))
    for _ in range(300):  # bounded: 3 s
        infos = await registry.runners()
        if infos and infos[0].stats.get("handled_total") == 3:
            break
        await asyncio.sleep(0.01)
    [info] = await registry.runners()
    assert info.kind == "consumer"
    assert info.name.startswith(f"{source.name}@")
    assert info.stats == {
        "handled_total": 3,
        "duplicate_total": 0,
        "retried_total": 0,
        "dead_total": 0,
    }
    stop.set()
    await asyncio.wait_for(task, 5)
    [info] = await registry.runners()
    assert info.stopped_at is not None
