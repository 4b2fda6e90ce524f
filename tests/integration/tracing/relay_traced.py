"""A relay process that records its spans as JSON lines: drains the outbox once, then exits.

python -m tests.integration.tracing.relay_traced DSN NATS_URL STREAM PREFIX SPANS_FILE
"""

from __future__ import annotations

import asyncio
import sys
import time

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from tether.outbox.relay import Relay
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.jetstream import JetStreamSink


def one_line(span: ReadableSpan) -> str:
    return span.to_json(indent=None) + "\n"


async def main(dsn: str, nats_url: str, stream: str, prefix: str, spans: str) -> None:
    with open(spans, "w") as out:
        provider = TracerProvider()
        provider.add_span_processor(
            SimpleSpanProcessor(ConsoleSpanExporter(out=out, formatter=one_line))
        )
        trace.set_tracer_provider(provider)
        sink = await JetStreamSink.connect(nats_url, stream=stream, subject_prefix=prefix)
        store = await PostgresOutboxStore.connect(dsn)
        try:
            relay = Relay(store, [sink])
            deadline = time.monotonic() + 30
            while relay.stats.published == 0 and time.monotonic() < deadline:
                await relay.run_once()
                await asyncio.sleep(0.02)
        finally:
            await store.close()
            await sink.close()
            provider.shutdown()
    print(f"published {relay.stats.published}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
