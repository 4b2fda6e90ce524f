"""The consumer contract (``tether.consume.port``), one suite run against every adapter.

The inbox and the handler's writes live in PostgreSQL (SQLAlchemy ``AsyncEngine.begin``, the
way an application wires it); each adapter's harness talks to its real broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.contract.consume.harness import ConsumerHarness, memory_harness
from tests.contract.consume.harness_jetstream import jetstream_harness
from tests.contract.consume.harness_rabbitmq import rabbitmq_harness
from tests.contract.consume.harness_redis import redis_harness
from tether.consume import Consumer, ConsumerSource, RedeliveryPolicy
from tether.core.envelope import Event, make_event
from tether.outbox.inbox import Inbox

pytestmark = pytest.mark.timeout(60)

HARNESSES: dict[str, Callable[[], AsyncIterator[ConsumerHarness]]] = {
    "jetstream": jetstream_harness,
    "memory": memory_harness,
    "rabbitmq": rabbitmq_harness,
    "redis": redis_harness,
}

FAST = RedeliveryPolicy(backoff=(0.3,), max_deliveries=3, jitter=0)


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[ConsumerHarness]:
    gen = HARNESSES[request.param]()
    yield await gen.__anext__()
    await gen.aclose()


@pytest.fixture
async def engine(pg_dsn: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(pg_dsn.replace("postgresql://", "postgresql+asyncpg://"))
    async with eng.begin() as conn:
        await conn.execute(text("CREATE TABLE consumed (event_id text, n int, delivery int)"))
    yield eng
    await eng.dispose()


def an_event(n: int, key: str = "k0", **kw: Any) -> Event:
    return make_event("OrderPlaced", {"n": n}, aggregate_type="order", aggregate_id=key, **kw)


class Recorder:
    """A handler that writes a row in the consumer's transaction, and can be told to fail."""

    def __init__(self, fail_times: int = 0, fail_always: bool = False) -> None:
        self.fail_times = fail_times
        self.fail_always = fail_always
        self.calls: list[tuple[str, float]] = []

    async def __call__(self, event: Event, tx: Any) -> None:
        self.calls.append((str(event.id), time.monotonic()))
        await tx.execute(
            text("INSERT INTO consumed VALUES (:id, :n, :d)"),
            {"id": str(event.id), "n": event.payload["n"], "d": len(self.calls)},
        )
        if self.fail_always or self.fail_times > 0:
            self.fail_times -= 1
            raise ValueError(f"card declined for {event.payload['n']}")


async def rows(engine: AsyncEngine) -> list[tuple[str, int]]:
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT event_id, n FROM consumed ORDER BY n"))
        return [(r[0], r[1]) for r in result]


async def drain(consumer: Consumer, until: Callable[[], bool], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not until():
        assert time.monotonic() < deadline, "the consumer did not get there in time"
        await consumer.run_once()


def consumer(
    source: ConsumerSource, handler: Any, engine: AsyncEngine, policy: RedeliveryPolicy = FAST
) -> Consumer:
    return Consumer(
        source, handler, transaction=engine.begin, policy=policy, wait=0.2, inbox=Inbox("contract")
    )


async def test_each_event_is_handled_once_in_key_order(
    harness: ConsumerHarness, engine: AsyncEngine
) -> None:
    events = [an_event(n, key=f"k{n % 4}") for n in range(24)]
    for event in events:
        await harness.publish(event)
    source = await harness.open_source()
    handler = Recorder()
    c = consumer(source, handler, engine)
    await drain(c, lambda: len(handler.calls) >= 24)
    assert await rows(engine) == [(str(e.id), n) for n, e in enumerate(events)]
    order = [call[0] for call in handler.calls]
    for key in range(4):
        mine = [str(e.id) for n, e in enumerate(events) if n % 4 == key]
        assert [i for i in order if i in mine] == mine
    assert await c.run_once() == []  # all acked: nothing comes back
    await source.close()


async def test_a_failure_comes_back_after_its_delay(
    harness: ConsumerHarness, engine: AsyncEngine
) -> None:
    event = an_event(1)
    await harness.publish(event)
    source = await harness.open_source()
    handler = Recorder(fail_times=1)
    c = consumer(source, handler, engine)
    await drain(c, lambda: len(handler.calls) >= 2)
    first, second = handler.calls
    assert second[1] - first[1] >= 0.3 * 0.9
    assert await rows(engine) == [(str(event.id), 1)]  # the failed try rolled back
    assert list(await (await harness.dead_letters()).list()) == []
    await source.close()


async def test_exhausted_message_is_dead_lettered_with_its_failure(
    harness: ConsumerHarness, engine: AsyncEngine
) -> None:
    event = an_event(7, tenant_id="acme")
    await harness.publish(event)
    source = await harness.open_source()
    handler = Recorder(fail_always=True)
    c = consumer(source, handler, engine)
    box = await harness.dead_letters()
    await drain(c, lambda: len(handler.calls) >= 3)
    deadline = time.monotonic() + 10
    while not (dead := list(await box.list())):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    [letter] = dead
    assert letter.event_id == str(event.id)
    assert letter.type == "OrderPlaced"
    assert letter.kind == "handler"
    assert letter.deliveries == 3
    assert "ValueError: card declined for 7" in letter.reason
    assert letter.origin
    assert await rows(engine) == []
    await asyncio.sleep(0.5)
    assert await c.run_once() == []  # not handed out a fourth time
    assert len(handler.calls) == 3
    await source.close()
    await box.close()


async def test_replay_puts_a_dead_letter_back_on_its_origin(
    harness: ConsumerHarness, engine: AsyncEngine
) -> None:
    event = an_event(3)
    await harness.publish(event)
    source = await harness.open_source()
    handler = Recorder(fail_times=3)
    c = consumer(source, handler, engine)
    box = await harness.dead_letters()
    await drain(c, lambda: len(handler.calls) >= 3)
    deadline = time.monotonic() + 10
    while not (dead := list(await box.list())):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert await box.replay([dead[0].id]) == 1
    await drain(c, lambda: len(handler.calls) >= 4)
    assert await rows(engine) == [(str(event.id), 3)]
    assert list(await box.list()) == []
    await source.close()
    await box.close()


@pytest.mark.parametrize(
    ("attributes", "body", "reason"),
    [
        ({}, b'{"n": 1}', "no CloudEvents 'id'"),
        ({"id": "not-a-uuid", "type": "OrderPlaced"}, b"{}", "not a UUID"),
        ({"id": "0192f7a0-0000-7000-8000-000000000001", "type": "T"}, b"\xff{oops", "not JSON"),
    ],
    ids=["no-attributes", "bad-id", "not-json"],
)
async def test_an_undecodable_message_is_dead_lettered_at_once(
    harness: ConsumerHarness,
    engine: AsyncEngine,
    attributes: dict[str, str],
    body: bytes,
    reason: str,
) -> None:
    await harness.publish_raw(attributes, body)
    source = await harness.open_source()
    handler = Recorder()
    c = consumer(source, handler, engine)
    box = await harness.dead_letters()
    outcomes = []
    deadline = time.monotonic() + 10
    while not outcomes:
        assert time.monotonic() < deadline
        outcomes = await c.run_once()
    assert [o.verdict for o in outcomes] == ["dead"]
    assert handler.calls == []
    [letter] = await box.list()
    assert letter.kind == "undecodable"
    assert reason in letter.reason
    assert letter.deliveries == 1
    await source.close()
    await box.close()


async def test_an_event_the_inbox_has_seen_is_acked_without_the_handler(
    harness: ConsumerHarness, engine: AsyncEngine
) -> None:
    event = an_event(5)
    async with engine.begin() as tx:
        assert await Inbox("contract").first_time(tx, event.id)
    await harness.publish(event)
    source = await harness.open_source()
    handler = Recorder()
    c = consumer(source, handler, engine)
    outcomes = []
    deadline = time.monotonic() + 10
    while not outcomes:
        assert time.monotonic() < deadline
        outcomes = await c.run_once()
    assert [o.verdict for o in outcomes] == ["duplicate"]
    assert handler.calls == []
    assert await c.run_once() == []
    await source.close()


async def test_a_message_left_unsettled_comes_back_to_another_consumer(
    harness: ConsumerHarness, engine: AsyncEngine
) -> None:
    event = an_event(9)
    await harness.publish(event)
    crashed = await harness.open_source()
    deadline = time.monotonic() + 10
    taken: list[Any] = []
    while not taken:
        assert time.monotonic() < deadline
        taken = list(await crashed.receive(10, 0.2))
    assert taken[0].deliveries == 1  # handed out, then its consumer "dies" without settling
    survivor = await harness.open_source()
    handler = Recorder()
    c = consumer(survivor, handler, engine)
    await drain(c, lambda: len(handler.calls) >= 1, limit=harness.redelivery + 20)
    assert await rows(engine) == [(str(event.id), 9)]
    await survivor.close()
    await crashed.close()
