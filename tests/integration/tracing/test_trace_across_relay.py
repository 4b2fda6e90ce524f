"""One trace from the HTTP request that called ``add_event`` to the consumer's handler, across
a relay running in another process: the envelope's ``traceparent`` carries it (W3C)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI
from nats.js.api import StreamConfig
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.consume import Consumer
from tether.consume.jetstream import JetStreamSource
from tether.core.envelope import Event
from tether.ops import tracing
from tether.outbox.producer import add_event

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.timeout(120)]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    previous = tracing.use(provider)  # Tether's own provider: no global state left behind
    try:
        yield spans
    finally:
        tracing.use(previous)
        provider.shutdown()


class ServerSpans:
    """What an ASGI instrumentation does: each request in a SERVER span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracer = tracing._current().get_tracer("test.http")
        name = f"{scope['method']} {scope['path']}"
        with tracer.start_as_current_span(name, kind=SpanKind.SERVER):
            await self.app(scope, receive, send)


@pytest.fixture
async def stream(nats_url: str) -> AsyncIterator[str]:
    name = f"TRACE_{uuid.uuid4().hex[:10]}"
    nc = await nats.connect(nats_url)
    await nc.jetstream().add_stream(StreamConfig(name=name, subjects=[f"{name.lower()}.>"]))
    try:
        yield name
    finally:
        for gone in (name, f"{name}_DLQ"):
            with contextlib.suppress(Exception):  # the DLQ stream may not exist
                await nc.jsm().delete_stream(gone)
        await nc.close()


def from_json(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def hex_id(value: int) -> str:
    return f"0x{value:016x}"


async def test_one_trace_from_request_to_handler_across_the_relay_process(
    exporter: InMemorySpanExporter, pg_dsn: str, nats_url: str, stream: str, tmp_path: Path
) -> None:
    engine = create_async_engine(pg_dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    sessions = async_sessionmaker(engine)
    app = FastAPI()

    @app.post("/orders")
    async def place() -> dict[str, str]:
        async with sessions.begin() as session:
            ref = await add_event(session, "OrderPlaced", {"n": 1}, topic="orders")
        return {"id": str(ref.id)}

    transport = httpx.ASGITransport(app=ServerSpans(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.post("/orders")
    assert answer.status_code == 200
    event_id = answer.json()["id"]

    # The relay: another process, its spans written to a file.
    spans_file = tmp_path / "relay-spans.jsonl"
    relay = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.integration.tracing.relay_traced", pg_dsn, nats_url,
         stream, stream.lower(), str(spans_file)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert relay.returncode == 0, relay.stderr
    assert "published 1" in relay.stdout

    handled: list[Event] = []

    async def handle(event: Event, tx: Any) -> None:
        handled.append(event)

    source = await JetStreamSource.connect(nats_url, stream=stream, durable="billing")
    consumer = Consumer(source, handle, transaction=engine.begin, wait=0.2)
    try:
        for _ in range(50):  # bounded: at most 50 short polls
            await consumer.run_once()
            if handled:
                break
    finally:
        await source.close()
        await engine.dispose()
    assert [str(e.id) for e in handled] == [event_id]

    local = {s.name: s for s in exporter.get_finished_spans()}
    request, produce = local["POST /orders"], local["tether.add_event OrderPlaced"]
    consume = local["tether.consume OrderPlaced"]
    remote = {s["name"]: s for s in from_json(spans_file)}
    assert set(remote) >= {"tether.outbox.wait", "tether.publish orders"}, remote
    wait, publish = remote["tether.outbox.wait"], remote["tether.publish orders"]
    claim = remote["tether.relay.claim"]

    trace_id = f"0x{request.context.trace_id:032x}"
    # One trace end to end, across two processes.
    assert {f"0x{s.context.trace_id:032x}" for s in (produce, consume)} == {trace_id}
    assert {wait["context"]["trace_id"], publish["context"]["trace_id"]} == {trace_id}
    # Each hop the child of the one before it.
    assert produce.parent is not None and produce.parent.span_id == request.context.span_id
    assert wait["parent_id"] == publish["parent_id"] == hex_id(produce.context.span_id)
    assert consume.parent is not None
    assert hex_id(consume.parent.span_id) == publish["context"]["span_id"]
    # The wait covers the time between the commit and the claim; the claim links to it.
    assert wait["start_time"] < wait["end_time"]
    assert [link["context"]["span_id"] for link in claim["links"]] == [wait["context"]["span_id"]]
    # The stored envelope keeps the producer's context; the message carries the publisher's.
    assert handled[0].traceparent is not None
    assert handled[0].traceparent.split("-")[2] == publish["context"]["span_id"][2:]
    assert produce.kind is SpanKind.PRODUCER and consume.kind is SpanKind.CONSUMER
    assert isinstance(request, ReadableSpan)
