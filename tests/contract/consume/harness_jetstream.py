"""The consumer contract's JetStream harness: a fresh stream per test, fed by Tether's sink."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping

import nats
import nats.js.errors

from tests.contract.consume.harness import ConsumerHarness
from tests.support import services
from tether.consume.jetstream import JetStreamDeadLetters, JetStreamSource, dead_letter_stream
from tether.consume.port import ConsumerSource, DeadLetterBox
from tether.core.envelope import Event
from tether.sinks import _nats_wire as wire
from tether.sinks.jetstream import JetStreamSink

ACK_WAIT = 1.0


async def jetstream_harness() -> AsyncIterator[ConsumerHarness]:
    services.require("nats")
    url = services.NATS_URL
    token = uuid.uuid4().hex[:12]
    stream, prefix = f"CONTRACT_{token}", f"contract{token}"
    sink = await JetStreamSink.connect(url, subject_prefix=prefix, stream=stream)
    admin = await nats.connect(url)
    js = admin.jetstream()
    opened: list[JetStreamSource | JetStreamDeadLetters] = []

    async def open_source() -> ConsumerSource:
        source = await JetStreamSource.connect(
            url, stream=stream, durable="contract", ack_wait=ACK_WAIT
        )
        opened.append(source)
        return source

    async def dead_letters() -> DeadLetterBox:
        box = await JetStreamDeadLetters.connect(url, stream=stream, durable="contract")
        opened.append(box)
        return box

    async def publish(event: Event) -> None:
        [outcome] = await sink.publish([event])
        assert outcome.ok, outcome.error

    async def publish_raw(attributes: Mapping[str, str], data: bytes) -> None:
        headers = {f"{wire.CE_PREFIX}{k}": wire.encode_value(v) for k, v in attributes.items()}
        await js.publish(f"{prefix}.raw", data, headers=headers or None)

    try:
        yield ConsumerHarness(open_source, dead_letters, publish, publish_raw, ACK_WAIT)
    finally:
        for each in opened:
            await each.close()
        await sink.close()
        for name in (stream, dead_letter_stream(stream)):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(name)
        await admin.close()
