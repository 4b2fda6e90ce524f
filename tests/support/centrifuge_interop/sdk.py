"""centrifuge-python, the official SDK, driven the way an application would use it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from centrifuge import (
    Client,
    ClientEventHandler,
    DisconnectedContext,
    PublicationContext,
    SubscribedContext,
    SubscriptionEventHandler,
    UnsubscribedContext,
)


@dataclass
class Recorder(SubscriptionEventHandler):
    """Records what one subscription sees; tests wait on it with bounded waits."""

    publications: list[Any] = field(default_factory=list)
    subscribed: list[SubscribedContext] = field(default_factory=list)
    unsubscribed: list[UnsubscribedContext] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.publications.append(ctx.pub)
        self.changed.set()

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.subscribed.append(ctx)
        self.changed.set()

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
        self.unsubscribed.append(ctx)
        self.changed.set()

    @property
    def payloads(self) -> list[Any]:
        return [pub.data for pub in self.publications]

    async def until(self, check: Any, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not check(self):
                self.changed.clear()
                await self.changed.wait()


@dataclass
class ClientLog(ClientEventHandler):
    disconnects: list[DisconnectedContext] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self.disconnects.append(ctx)
        self.changed.set()

    async def until_disconnected(self, timeout: float = 10.0) -> DisconnectedContext:
        async with asyncio.timeout(timeout):
            while not self.disconnects:
                self.changed.clear()
                await self.changed.wait()
        return self.disconnects[-1]


def client(url: str, token: str, **options: Any) -> tuple[Client, ClientLog]:
    log = ClientLog()
    options.setdefault("min_reconnect_delay", 0.05)
    options.setdefault("max_reconnect_delay", 0.5)
    return Client(url, token=token, events=log, **options), log


async def subscribed(sdk: Client, channel: str, **options: Any) -> Recorder:
    recorder = Recorder()
    sub = sdk.new_subscription(channel, recorder, **options)
    await sub.subscribe()
    await recorder.until(lambda r: r.subscribed or r.unsubscribed)
    return recorder
