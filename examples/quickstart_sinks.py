"""Sinks on their own: publish to JetStream, and script failures with the memory sink.

Run: ``.venv/bin/python examples/quickstart_sinks.py`` (needs NATS with JetStream on
127.0.0.1:4222). Prints one line per part.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import nats

from tether.core.envelope import Event, make_event
from tether.sinks.base import Outcome
from tether.sinks.jetstream import JetStreamSink
from tether.sinks.memory import MemorySink


async def deliver(events: Sequence[Event], nats_url: str) -> Sequence[Outcome]:
    sink = await JetStreamSink.connect(nats_url, subject_prefix="shop", stream="SHOP")
    try:
        return await sink.publish(events)  # subject "shop.<topic>", one PubAck per event
    finally:
        await sink.close()


async def demo() -> None:
    sink = MemorySink()
    first, second = make_event("A", {}), make_event("B", {})
    sink.fail_ids({second.id}, "poison", retryable=False)
    outcomes = await sink.publish([first, second])
    assert [o.ok for o in outcomes] == [True, False]
    assert await sink.wait_for(1) == [first]  # waits on a condition, never sleeps


async def main() -> None:
    url = "nats://127.0.0.1:4222"
    event = make_event("OrderPlaced", {"order": str(uuid.uuid4())}, topic="orders")
    outcomes = await deliver([event, event], url)  # the second is a duplicate by id
    print("jetstream outcomes:", [o.ok for o in outcomes])
    nc = await nats.connect(url)
    await nc.jetstream().delete_stream("SHOP")
    await nc.close()
    await demo()
    print("memory sink: one delivered, one refused")


if __name__ == "__main__":
    asyncio.run(main())
