"""Stop the NATS server while the JetStream sink is publishing, then start it again.

A relay-like loop keeps publishing batches and re-queues any batch that raised
SinkUnavailableError and any event that failed retryably. While NATS is down the sink must say
so (raise, or fail retryably, never report OK); once NATS is back the same sink object must
publish again, and in the end the stream holds every event exactly once (Nats-Msg-Id dedup
absorbs the re-publishes): the ids are read back from the stream, not just counted. A publish
call that began and ended while NATS was down must not report a single event OK. Bounded: the
whole test gets 30 seconds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.client import JetStreamContext

from tests.support import chaos
from tether.core.envelope import Event, make_event
from tether.core.errors import SinkUnavailableError
from tether.sinks.base import Outcome
from tether.sinks.jetstream import JetStreamSink

pytestmark = [pytest.mark.chaos, pytest.mark.nats, pytest.mark.timeout(60)]


async def wait_until(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def new_events(n: int) -> list[Event]:
    return [make_event("Tick", {"pad": "x" * 200}, topic="tick") for _ in range(n)]


async def stored_ids(js: JetStreamContext, stream: str, prefix: str) -> list[uuid.UUID]:
    """The ``Nats-Msg-Id`` of every message in the stream, read back one by one."""
    total = (await js.stream_info(stream)).state.messages
    reader = await js.pull_subscribe(
        f"{prefix}.>", stream=stream, config=ConsumerConfig(ack_policy=AckPolicy.NONE)
    )
    ids: list[uuid.UUID] = []
    while len(ids) < total:
        for msg in await reader.fetch(min(1000, total - len(ids)), timeout=5):
            ids.append(uuid.UUID((msg.headers or {})["Nats-Msg-Id"]))
    await reader.unsubscribe()
    return ids


class RelayLoop:
    """Publishes new events in batches while ``producing``; whatever was not acknowledged
    goes back in the queue, and the loop ends once the queue is empty."""

    def __init__(self, sink: JetStreamSink) -> None:
        self.sink = sink
        self.producing = True
        self.produced: set[uuid.UUID] = set()
        self.todo: list[Event] = []
        self.unavailable = 0
        self.retryable_failures = 0
        self.ok_after_restart = 0
        self.restarted = False
        self.acked: set[uuid.UUID] = set()
        # Outage windows: ``down`` is set once NATS no longer answers and cleared before it is
        # started again; ``outage`` counts the windows so a call is known to lie inside one.
        self.down = False
        self.outage = 0
        self.calls_inside_outage = 0
        self.ok_inside_outage = 0

    def mark(self, down: bool) -> None:
        self.down = down
        self.outage += 1

    async def run(self, batch_size: int = 200) -> None:
        while self.producing or self.todo:
            if self.producing and len(self.todo) < batch_size:
                fresh = new_events(batch_size)
                self.produced.update(e.id for e in fresh)
                self.todo.extend(fresh)
            batch, self.todo = self.todo[:batch_size], self.todo[batch_size:]
            began_down, began_in = self.down, self.outage
            try:
                outcomes = await self.sink.publish(batch)
            except SinkUnavailableError:
                self.unavailable += 1
                self.todo.extend(batch)
                await asyncio.sleep(0.05)  # the relay's back-off; does not decide the outcome
                continue
            finally:
                inside = began_down and self.down and self.outage == began_in
                self.calls_inside_outage += inside
            if inside:  # NATS was down for the whole call: nothing can have been acknowledged
                self.ok_inside_outage += sum(1 for o in outcomes if o.ok)
            self.settle(batch, outcomes)

    def settle(self, batch: list[Event], outcomes: Sequence[Outcome]) -> None:
        for event, outcome in zip(batch, outcomes, strict=True):
            if outcome.ok:
                self.acked.add(event.id)
                self.ok_after_restart += self.restarted
            else:
                assert outcome.retryable, outcome.error
                self.retryable_failures += 1
                self.todo.append(event)


async def test_sink_survives_a_nats_restart_without_being_recreated(nats_url: str) -> None:
    token = uuid.uuid4().hex[:10]
    prefix, name = f"chaossink{token}", f"CHAOSSINK_{token}"
    admin = await nats.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = admin.jetstream()
    await js.add_stream(
        StreamConfig(
            name=name, subjects=[f"{prefix}.>"], storage=StorageType.FILE, duplicate_window=120
        )
    )
    sink = await JetStreamSink.connect(
        nats_url, subject_prefix=prefix, ack_timeout=2.0, reconnect_time_wait=0.2
    )
    loop = RelayLoop(sink)
    try:
        async with asyncio.timeout(30):
            publisher = asyncio.create_task(loop.run())
            await wait_until(lambda: len(loop.acked) >= 2_000, "first acks", 10)
            try:
                await asyncio.to_thread(chaos.stop, "nats")
                loop.mark(down=True)
                down_before = loop.unavailable + loop.retryable_failures
                await wait_until(
                    lambda: (
                        loop.unavailable + loop.retryable_failures > down_before
                        and loop.calls_inside_outage >= 1
                    ),
                    "the sink to report the outage",
                    5,
                )
                assert not publisher.done()
            finally:
                loop.mark(down=False)
                await asyncio.to_thread(chaos.start, "nats")
            loop.restarted = True
            await wait_until(lambda: loop.ok_after_restart >= 1_000, "acks after restart", 15)
            loop.producing = False
            await publisher
        print(
            f"acked={len(loop.acked)} unavailable={loop.unavailable} "
            f"retryable_failures={loop.retryable_failures} after_restart={loop.ok_after_restart} "
            f"calls_inside_outage={loop.calls_inside_outage}"
        )
        assert loop.ok_inside_outage == 0, "the sink reported OK while NATS was down"
        assert loop.acked == loop.produced
        stored = await stored_ids(js, name, prefix)
        assert sorted(stored) == sorted(loop.produced)  # every event, once, despite re-publishes
    finally:
        await sink.close()
        await asyncio.to_thread(chaos.start, "nats")
        await js.delete_stream(name)
        await admin.close()
