"""The relay's publish spans: one per event in the event's trace, the message re-stamped with
the span, failures recorded on the span; a claimed batch records each event's wait."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tether.core.envelope import Event, make_event
from tether.core.errors import SinkUnavailableError
from tether.ops import tracing
from tether.sinks.base import Outcome

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.use(provider)
    try:
        yield exporter
    finally:
        tracing.use(previous)


class Scripted:
    """A sink that refuses its second event, or raises when ``down``."""

    name = "scripted"

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.got: list[Event] = []

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        if self.down:
            raise SinkUnavailableError("broker down")
        self.got.extend(events)
        return [
            Outcome.failed("refused") if i == 1 else Outcome(ok=True) for i in range(len(events))
        ]

    async def close(self) -> None:
        return None


async def test_each_event_is_published_in_a_span_of_its_trace(
    spans: InMemorySpanExporter,
) -> None:
    sink = Scripted()
    events = [make_event("a", {}, topic="t", traceparent=PARENT), make_event("b", {}, topic="t")]
    outcomes = await tracing.publisher(sink).publish(events)  # type: ignore[arg-type]
    assert [o.ok for o in outcomes] == [True, False]
    first, second = spans.get_finished_spans()
    assert f"{first.context.trace_id:032x}" == PARENT.split("-")[1]
    assert first.parent is not None and f"{first.parent.span_id:016x}" == PARENT.split("-")[2]
    assert second.parent is None  # no traceparent: a trace of its own
    assert [e.traceparent for e in sink.got] == [
        tracing.traceparent_of(first),
        tracing.traceparent_of(second),  # type: ignore[arg-type]
    ]
    assert first.status.status_code is StatusCode.UNSET
    assert second.status.status_code is StatusCode.ERROR and second.status.description == "refused"
    assert events[0].traceparent == PARENT  # the stored envelope is left as it was


async def test_a_sink_that_raises_ends_every_span_with_the_error(
    spans: InMemorySpanExporter,
) -> None:
    events = [make_event("a", {}, traceparent=PARENT), make_event("b", {})]
    with pytest.raises(SinkUnavailableError):
        await tracing.publisher(Scripted(down=True)).publish(events)  # type: ignore[arg-type]
    finished = spans.get_finished_spans()
    assert len(finished) == 2
    assert {s.status.status_code for s in finished} == {StatusCode.ERROR}


@dataclass
class Claimed:
    event: Event


def test_a_claimed_batch_records_each_traced_events_wait_and_links_the_claim(
    spans: InMemorySpanExporter,
) -> None:
    created = datetime.now(UTC) - timedelta(seconds=2)
    traced = make_event("a", {}, traceparent=PARENT, created_at=created)
    tracing.claimed([Claimed(traced), Claimed(make_event("b", {}))])
    wait, claim = spans.get_finished_spans()
    assert wait.name == "tether.outbox.wait" and claim.name == "tether.relay.claim"
    assert wait.start_time is not None and wait.end_time is not None
    assert 1.9 < (wait.end_time - wait.start_time) / 1e9 < 60
    assert [link.context.span_id for link in claim.links] == [wait.context.span_id]
    assert claim.attributes is not None and claim.attributes["messaging.batch.message_count"] == 2
