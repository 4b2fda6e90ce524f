"""The runner's decisions, with the in-memory source and a transaction that can be made to fail."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from tether.consume import Consumer, Delivery, RedeliveryPolicy
from tether.consume.memory import MemorySource
from tether.core.envelope import Event, make_event
from tether.core.errors import BrokerUnavailableError
from tether.outbox.inbox import Inbox


class FakeInbox(Inbox):
    def __init__(self) -> None:
        super().__init__("unit")
        self.seen: set[str] = set()

    async def first_time(self, target: object, event_id: Any) -> bool:
        if str(event_id) in self.seen:
            return False
        self.seen.add(str(event_id))
        return True


class Store:
    """Stands in for the database: a transaction that commits, or fails to open."""

    def __init__(self) -> None:
        self.down = False

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[object]:
        if self.down:
            raise ConnectionRefusedError("database is down")
        yield object()


def consumer(source: MemorySource, store: Store, handler: Any, **kw: Any) -> Consumer:
    policy = RedeliveryPolicy(backoff=(0.05,), max_deliveries=2, jitter=0)
    return Consumer(
        source, handler, transaction=store.begin, inbox=FakeInbox(), policy=policy, wait=0.05, **kw
    )


async def test_a_store_outage_never_dead_letters() -> None:
    source, store = MemorySource(), Store()
    calls: list[Event] = []

    async def handler(event: Event, tx: object) -> None:
        calls.append(event)

    c = consumer(source, store, handler, store_pause=0.05)
    source.publish(make_event("T", {}))
    store.down = True
    for _ in range(4):  # twice the max deliveries
        outcomes = await c.run_once()
        assert [o.verdict for o in outcomes] in ([], ["retried"])
        await asyncio.sleep(0.06)
    assert source.dead == []
    store.down = False
    await asyncio.sleep(0.06)
    assert [o.verdict for o in await c.run_once()] == ["acked"]
    assert len(calls) == 1


async def test_a_handler_raising_broker_unavailable_is_still_the_handler_failing() -> None:
    source, store = MemorySource(), Store()

    async def handler(event: Event, tx: object) -> None:
        raise BrokerUnavailableError("downstream broker")

    c = consumer(source, store, handler)
    source.publish(make_event("T", {}))
    assert [o.verdict for o in await c.run_once()] == ["retried"]


class Flaky(MemorySource):
    """A source whose broker is down for the first ``outages`` receives."""

    def __init__(self, outages: int) -> None:
        super().__init__()
        self.outages = outages

    async def receive(self, max_messages: int, wait: float) -> Sequence[Delivery]:
        if self.outages:
            self.outages -= 1
            raise BrokerUnavailableError("connection refused")
        return await super().receive(max_messages, wait)


async def test_run_pauses_through_a_broker_outage_and_resumes() -> None:
    source, store = Flaky(outages=2), Store()
    done = asyncio.Event()

    async def handler(event: Event, tx: object) -> None:
        done.set()

    source.publish(make_event("T", {}))
    stop = asyncio.Event()
    task = asyncio.create_task(consumer(source, store, handler).run(stop))
    await asyncio.wait_for(done.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert source.outages == 0


@pytest.mark.parametrize(("batch_size", "wait"), [(0, 1.0), (10_001, 1.0), (1, 0), (1, 61)])
def test_bad_runner_settings_are_named(batch_size: int, wait: float) -> None:
    with pytest.raises(Exception, match=r"batch_size|wait"):
        Consumer(
            MemorySource(),
            lambda e, t: asyncio.sleep(0),
            transaction=Store().begin,
            batch_size=batch_size,
            wait=wait,
        )
