"""One trace from a request to a consumer's handler, across the outbox (embedded SQLite).

Run: ``.venv/bin/python examples/tracing.py`` (the ``otel`` extra, no services). It prints the
spans of the one trace, each under its parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tether.consume import Consumer
from tether.consume.memory import MemorySource
from tether.core.envelope import Event
from tether.outbox import add_event
from tether.outbox.relay import Relay
from tether.outbox.store_sqlite import SqliteOutboxStore
from tether.sinks.memory import MemorySink
from tether.store.sqlite.ddl import migrate

# Any SDK tracer provider turns Tether's spans on; here one that keeps them in memory.
spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("shop")


async def place_order(db: aiosqlite.Connection) -> None:
    # The application's request span (an ASGI instrumentation would open it).
    with tracer.start_as_current_span("POST /orders"):
        await add_event(db, "OrderPlaced", {"order_id": "o-1"}, topic="orders")
        await db.commit()


async def ship(event: Event, tx: Any) -> None:
    print("handled", event.type)


def show(span: ReadableSpan, children: dict[int | None, list[ReadableSpan]], depth: int) -> None:
    print("  " * depth + span.name)
    for child in children.get(span.context.span_id, []):
        show(child, children, depth + 1)


async def main(path: str) -> int:
    db = await aiosqlite.connect(path)
    await migrate(db)
    await place_order(db)

    store = await SqliteOutboxStore.connect(path)
    sink = MemorySink()
    await Relay(store, [sink]).run_once()  # the wait and the publish join the event's trace
    await store.close()

    source = MemorySource()
    for event in sink.events:  # what a broker would deliver, traceparent included
        source.publish(event)

    @contextlib.asynccontextmanager
    async def transaction() -> AsyncIterator[aiosqlite.Connection]:
        yield db
        await db.commit()

    await Consumer(source, ship, transaction=transaction).run_once()
    await db.close()

    finished = [s for s in spans.get_finished_spans() if s.name != "tether.relay.claim"]
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in finished:
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)
    for root in children[None]:
        show(root, children, 0)
    return 0 if len({s.context.trace_id for s in finished}) == 1 else 1


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(asyncio.run(main(str(Path(tmp) / "shop.db"))))
