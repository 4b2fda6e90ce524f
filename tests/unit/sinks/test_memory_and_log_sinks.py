"""The in-memory and log sinks' own knobs (the shared behaviour is in the contract suite)."""

from __future__ import annotations

import asyncio
import io
import logging

import orjson
import pytest

from tether.core.envelope import Event, make_event
from tether.core.errors import ConfigError, SinkUnavailableError
from tether.sinks.log import LogSink, structured_line
from tether.sinks.memory import MemorySink


def evs(n: int) -> list[Event]:
    return [make_event("T", {"n": i}) for i in range(n)]


async def test_memory_fail_next_then_by_id_then_all() -> None:
    sink = MemorySink()
    batch = evs(4)
    sink.fail_next(1, "hiccup")
    sink.fail_ids({batch[2].id}, "poison", retryable=False)
    outcomes = await sink.publish(batch)
    assert [o.ok for o in outcomes] == [False, True, False, True]
    assert (outcomes[0].error, outcomes[0].retryable) == ("hiccup", True)
    assert (outcomes[2].error, outcomes[2].retryable) == ("poison", False)
    sink.fail_all("down")
    assert not any(o.ok for o in await sink.publish(evs(2)))
    sink.heal()
    assert all(o.ok for o in await sink.publish(batch))
    assert sink.ids == [batch[1].id, batch[3].id, *(e.id for e in batch)]


async def test_memory_unavailable_and_dedup() -> None:
    sink = MemorySink(dedup=True)
    assert sink.features.dedups_by_id
    batch = evs(3)
    await sink.publish(batch)
    await sink.publish(batch)
    assert len(sink.events) == 3
    sink.unavailable = True
    with pytest.raises(SinkUnavailableError):
        await sink.publish(batch)
    assert sink.calls == 3


async def test_memory_wait_for_wakes_on_publish() -> None:
    sink = MemorySink()
    waiter = asyncio.create_task(sink.wait_for(5))
    await sink.publish(evs(2))
    assert not waiter.done()
    await sink.publish(evs(3))
    assert len(await asyncio.wait_for(waiter, 2)) == 5


async def test_memory_wait_for_times_out() -> None:
    with pytest.raises(TimeoutError):
        await MemorySink().wait_for(1, timeout=0.01)


def test_structured_line_is_a_cloudevent() -> None:
    event = make_event("T", {"a": [1, 2]}, tenant_id="acme")
    obj = orjson.loads(structured_line(event))
    assert obj == event.to_cloudevent()
    assert "\n" not in structured_line(event)


async def test_log_sink_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    sink = LogSink(logger=logging.getLogger("tether.test.events"), level=logging.WARNING)
    with caplog.at_level(logging.WARNING, logger="tether.test.events"):
        await sink.publish(evs(2))
    assert [orjson.loads(r.getMessage())["type"] for r in caplog.records] == ["T", "T"]


async def test_log_sink_broken_stream_is_unavailable() -> None:
    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError("gone")

    with pytest.raises(SinkUnavailableError):
        await LogSink(Broken()).publish(evs(1))


def test_log_sink_takes_a_stream_or_a_logger() -> None:
    with pytest.raises(ConfigError):
        LogSink(io.StringIO(), logger=logging.getLogger("x"))
