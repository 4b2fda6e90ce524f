"""Traces cost nothing when off: without the ``otel`` extra the hooks are the functions they
wrap; with the API but no tracer provider they record nothing and add no traceparent."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tether.ops import tracing
from tether.outbox import add_event_sync
from tether.sinks.memory import MemorySink

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import sqlite3
    import sys


    class NoOpenTelemetry:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ImportError(f"{name} is blocked in this test")
            return None


    sys.meta_path.insert(0, NoOpenTelemetry())

    from tether.consume import runner
    from tether.ops import tracing
    from tether.outbox import add_event_sync, producer
    from tether.outbox.relay import Relay
    from tether.outbox.store_sqlite import SqliteOutboxStore
    from tether.sinks.memory import MemorySink
    from tether.store.sqlite.ddl import migrate_sync

    assert not tracing.installed() and not tracing.active()
    assert "opentelemetry" not in sys.modules
    assert not hasattr(producer.add_event, "__wrapped__")  # the function itself
    sink = MemorySink()
    assert tracing.publisher(sink) is sink


    async def handler(event, tx):
        return None


    assert tracing.traced_handler(handler, "c") is handler


    async def main(path):
        conn = sqlite3.connect(path)
        migrate_sync(conn)
        with conn:
            add_event_sync(conn, "order.placed", {"id": 1})
        conn.close()
        store = await SqliteOutboxStore.connect(path)
        try:
            report = await Relay(store, [sink]).run_once()
        finally:
            await store.close()
        print(report.published, sink.events[0].traceparent)


    asyncio.run(main(sys.argv[1]))
    """
)


def test_without_opentelemetry_the_hooks_are_the_plain_functions(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "t.db")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "None"]


def test_with_the_api_but_no_provider_nothing_is_recorded_or_added() -> None:
    import sqlite3

    from tether.store.sqlite.ddl import migrate_sync

    assert tracing.installed() and not tracing.active()
    conn = sqlite3.connect(":memory:")
    migrate_sync(conn)
    with conn:
        ref = add_event_sync(conn, "order.placed", {"id": 1})
    assert ref.event.traceparent is None
    sink = MemorySink()
    assert tracing.publisher(sink) is sink  # no wrapper, no extra await per publish


def test_with_a_provider_add_event_stores_its_spans_context_unless_given_one() -> None:
    import sqlite3

    from tether.store.sqlite.ddl import migrate_sync

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    previous = tracing.use(provider)
    try:
        conn = sqlite3.connect(":memory:")
        migrate_sync(conn)
        with conn:
            ref = add_event_sync(conn, "order.placed", {"id": 1})
            given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            kept = add_event_sync(conn, "order.placed", {"id": 2}, traceparent=given)
    finally:
        tracing.use(previous)
    (first, second) = spans.get_finished_spans()
    assert ref.event.traceparent == tracing.traceparent_of(first)  # type: ignore[arg-type]
    assert kept.event.traceparent == given
    assert first.attributes is not None
    assert first.attributes["messaging.message.id"] == str(ref.id)
    assert second.parent is None  # the given traceparent is stored as is, not re-parented
