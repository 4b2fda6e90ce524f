"""Reading the doctor's probe back from a sink, where Tether knows how (NATS JetStream).

Other sinks count as having seen the probe when they acknowledged it to the relay; a reader
for one is a class with ``find``, ``remove`` and ``close`` added to :data:`READERS`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from tether.config import Settings
from tether.core.envelope import Event
from tether.core.redact import mask_url
from tether.sinks.builtin import NatsSettings


class Reader(Protocol):
    async def find(self, event: Event, timeout: float) -> bool: ...

    async def remove(self, event: Event) -> None: ...

    async def close(self) -> None: ...


class NatsReader:
    """Finds the probe as the last message on its subject, by its ``Nats-Msg-Id``."""

    def __init__(self, nc: Any, settings: NatsSettings) -> None:
        self._nc = nc
        self._settings = settings
        self._seq: int | None = None

    @classmethod
    async def open(cls, settings: NatsSettings) -> NatsReader:
        import nats

        nc = await nats.connect(
            settings.servers(), connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0
        )
        return cls(nc, settings)

    def _subject(self, event: Event) -> str:
        return f"{self._settings.subject_prefix}.{event.topic}"

    async def find(self, event: Event, timeout: float) -> bool:
        from nats.js.errors import NotFoundError

        jsm = self._nc.jsm()
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = await jsm.get_last_msg(self._settings.stream, self._subject(event))
            except NotFoundError:
                msg = None
            if msg is not None and (msg.headers or {}).get("Nats-Msg-Id") == str(event.id):
                self._seq = msg.seq
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)

    async def remove(self, event: Event) -> None:
        if self._seq is not None:
            await self._nc.jsm().delete_msg(self._settings.stream, self._seq)
            self._seq = None

    async def close(self) -> None:
        await self._nc.close()


READERS: dict[str, Callable[[Any], Awaitable[Reader]]] = {"nats": NatsReader.open}


async def open_readers(cfg: Settings, sinks: Iterable[str]) -> dict[str, Reader]:
    readers: dict[str, Reader] = {}
    try:
        for name in sorted(sinks):
            opener = READERS.get(name)
            if opener is not None:
                readers[name] = await opener(cfg.sinks.section(name))
    except BaseException:
        for reader in readers.values():
            await reader.close()
        raise
    return readers


def masked(url: str) -> str:
    return mask_url(url)


# The setting that names where a sink's events land, for the sinks Tether ships.
_WHERE = {"nats": "stream", "rabbitmq": "exchange", "redis": "stream"}


def describe(name: str, section: Any) -> str:
    """What the open sink stands for, from its settings."""
    url = getattr(section, "url", None)
    where = f" at {masked(url)}" if isinstance(url, str) else ""
    field = _WHERE.get(name)
    value = getattr(section, field, None) if field else None
    if isinstance(value, str):
        return f"reachable{where}; {field} {value!r} in place"
    return f"reachable{where}"
