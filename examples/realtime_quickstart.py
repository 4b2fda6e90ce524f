"""The real-time gateway in one file: outbox events to WebSocket clients, with recovery.

A gateway (in-memory backplane here; RedisBackplane to share channels between gateways and
the relay) serves the Centrifuge protocol; the official centrifuge-python SDK connects; the
realtime sink publishes events by routing rules; the client drops, misses two events, and
recovers them on reconnect.

Run:  .venv/bin/python examples/realtime_quickstart.py
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import jwt
import uvicorn
from centrifuge import Client, PublicationContext, SubscribedContext, SubscriptionEventHandler

from tether.core.envelope import Event, make_event
from tether.realtime import ChannelAccess, Gateway, JwtVerifier, MemoryBackplane, Routes
from tether.sinks.realtime import RealtimeSink

SECRET = "change-me-to-32-or-more-random-bytes"


class Printer(SubscriptionEventHandler):
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        print(
            f"subscribed to {ctx.channel}: recovering={ctx.was_recovering} "
            f"recovered={ctx.recovered}"
        )

    async def on_publication(self, ctx: PublicationContext) -> None:
        event = ctx.pub.data
        self.seen.append(event["payload"]["sku"])
        print(f"offset {ctx.pub.offset}: {event['type']} {event['payload']}")


async def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 (a short demo; tests wait on events)
            await asyncio.sleep(0.02)


async def main() -> None:
    # 1. One backplane shared by the gateway and the sink (Redis in production).
    backplane = MemoryBackplane(history_size=100)

    # 2. The gateway: who a token belongs to, and who may read which topic.
    gateway = Gateway(
        JwtVerifier(SECRET),
        access=ChannelAccess({"requirements": lambda identity, topic: True}),
        backplane=backplane,
    )

    # 3. The sink the relay publishes through: event type -> channels.
    sink = RealtimeSink(
        backplane, Routes({"RequirementPublished": ["org:{tenant}", "topic:requirements"]})
    )

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(gateway, port=port, log_level="warning", ws_ping_interval=None)
    )
    serving = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started)

    # 4. A client: the official SDK, with a token naming its user and organization.
    token = jwt.encode({"sub": "asha", "org": "acme", "exp": int(time.time()) + 600}, SECRET)
    client = Client(f"ws://127.0.0.1:{port}/connection/websocket", token=token)
    printer = Printer()
    subscription = client.new_subscription("org:acme", printer)
    await client.connect()
    await subscription.subscribe()
    await subscription.ready()

    def requirement(sku: str) -> Event:
        return make_event(
            "RequirementPublished", {"sku": sku}, topic="requirement", tenant_id="acme"
        )

    await sink.publish([requirement("A-1")])
    await wait_for(lambda: printer.seen == ["A-1"])

    # 5. The network blips: two events are published while the client is away.
    await client.disconnect()
    await sink.publish([requirement("B-2"), requirement("C-3")])
    await client.connect()
    await wait_for(lambda: printer.seen == ["A-1", "B-2", "C-3"])
    print("seen in order:", printer.seen)

    await client.disconnect()
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
