"""The sinks Tether ships, as registry plugins (declared as entry points in pyproject.toml).

Adapters are imported when a sink is opened, not here: reading the settings must work
without the ``nats`` extra.
"""

from __future__ import annotations

import sys
from typing import Literal

from tether.sinks.base import Sink
from tether.sinks.registry import SinkPlugin, SinkSettings, hint


class NatsSettings(SinkSettings):
    url: str | None = hint("a nats:// URL", default=None, pattern=r"^(nats|tls|ws|wss)://.+")
    stream: str = hint(
        "a JetStream stream name", default="TETHER", pattern=r"^[A-Za-z0-9_-]{1,64}$"
    )
    subject_prefix: str = hint(
        "a subject prefix like tether or app.events",
        default="tether",
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
    )


class LogSinkSettings(SinkSettings):
    enabled: bool = hint("true or false", default=False)
    stream: Literal["stdout", "stderr"] = hint("stdout or stderr", default="stdout")


class MemorySinkSettings(SinkSettings):
    enabled: bool = hint("true or false", default=False)
    dedup: bool = hint("true or false", default=False)


async def _open_nats(s: NatsSettings) -> Sink:
    from tether.sinks.jetstream import JetStreamSink

    assert s.url is not None  # enabled() says so
    return await JetStreamSink.connect(
        s.url, stream=s.stream, subject_prefix=s.subject_prefix, name="nats"
    )


async def _open_log(s: LogSinkSettings) -> Sink:
    from tether.sinks.log import LogSink

    return LogSink(sys.stdout if s.stream == "stdout" else sys.stderr, name="log")


async def _open_memory(s: MemorySinkSettings) -> Sink:
    from tether.sinks.memory import MemorySink

    return MemorySink("memory", dedup=s.dedup)


NATS: SinkPlugin[NatsSettings] = SinkPlugin(
    "nats",
    NatsSettings,
    _open_nats,
    enabled=lambda s: s.url is not None,
    enable_hint="--nats-url or sinks.nats.url (NATS JetStream)",
)
LOG: SinkPlugin[LogSinkSettings] = SinkPlugin(
    "log",
    LogSinkSettings,
    _open_log,
    enabled=lambda s: s.enabled,
    enable_hint="--log-sink or sinks.log.enabled = true (one JSON line per event)",
)
MEMORY: SinkPlugin[MemorySinkSettings] = SinkPlugin(
    "memory",
    MemorySinkSettings,
    _open_memory,
    enabled=lambda s: s.enabled,
    enable_hint="sinks.memory.enabled = true (kept in the relay's memory: for trials)",
)
