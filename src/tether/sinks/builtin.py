"""The sinks Tether ships, as registry plugins (declared as entry points in pyproject.toml).

Adapters are imported when a sink is opened, not here: reading the settings must work
without the ``nats``, ``rabbitmq`` or ``redis`` extras.
"""

from __future__ import annotations

import re
import sys
from typing import Literal

from pydantic import field_validator, model_validator

from tether.core.errors import ConfigError
from tether.sinks import _keys
from tether.sinks.base import Sink
from tether.sinks.registry import SinkPlugin, SinkSettings, hint

_NATS_URL = re.compile(r"(nats|tls|ws|wss)://[^\s,]+")


class NatsSettings(SinkSettings):
    # Several URLs (comma-separated) are the servers of one cluster: the client connects to
    # one and fails over to the others.
    url: str | None = hint("a nats:// URL, or several separated by commas", default=None)
    stream: str = hint(
        "a JetStream stream name", default="TETHER", pattern=r"^[A-Za-z0-9_-]{1,64}$"
    )
    subject_prefix: str = hint(
        "a subject prefix like tether or app.events",
        default="tether",
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
    )

    @field_validator("url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = value.split(",")
        for n, part in enumerate(parts, 1):
            if not _NATS_URL.fullmatch(part.strip()):
                which = "" if len(parts) == 1 else f" (URL {n} of {len(parts)} is not one)"
                raise ValueError(
                    "must be a nats://, tls://, ws:// or wss:// URL, or several separated by "
                    f"commas{which}"
                )
        return value

    def servers(self) -> list[str]:
        """The URLs of ``url``, in order."""
        return [part.strip() for part in (self.url or "").split(",") if part.strip()]


def _check_template(value: str, what: str, max_bytes: int) -> str:
    try:
        _keys.key_template(value, what=what, max_bytes=max_bytes)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return value


class RabbitMQSettings(SinkSettings):
    url: str | None = hint("an amqp:// or amqps:// URL", default=None, pattern=r"^amqps?://.+")
    exchange: str = hint(
        "an exchange name (letters, digits, - _ . :)",
        default="tether",
        pattern=r"^[A-Za-z0-9_.:-]{1,127}$",
    )
    routing_key: str = hint("a template like {topic} or events.{type}", default="{topic}")
    confirm_timeout: float = hint("seconds, > 0 and <= 300", default=5.0, gt=0, le=300)
    max_message_bytes: int = hint(
        "bytes, 1..536870912", default=128 * 1024 * 1024, ge=1, le=512 * 1024 * 1024
    )

    @field_validator("routing_key")
    @classmethod
    def _routing_key(cls, value: str) -> str:
        return _check_template(value, "routing key", 255)


class RedisStreamsSettings(SinkSettings):
    url: str | None = hint(
        "a redis://, rediss:// or unix:// URL", default=None, pattern=r"^(rediss?|unix)://.+"
    )
    stream: str = hint("a template like tether:{topic}", default="tether:{topic}")
    maxlen: int | None = hint("an integer >= 1 (entries kept per stream)", default=None, ge=1)
    minid_age: float | None = hint("seconds > 0 (entries kept per stream)", default=None, gt=0)
    exact_trim: bool = hint("true or false", default=False)
    dedup_window: float = hint(
        "seconds, >= 0.001 and <= 604800", default=120.0, ge=0.001, le=604_800
    )

    @field_validator("stream")
    @classmethod
    def _stream(cls, value: str) -> str:
        return _check_template(value, "stream key", 1024)

    @model_validator(mode="after")
    def _one_trim(self) -> RedisStreamsSettings:
        if self.maxlen is not None and self.minid_age is not None:
            raise ValueError(
                "sinks.redis: give maxlen or minid_age, not both (XADD trims by one of them)"
            )
        return self


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
        s.servers(), stream=s.stream, subject_prefix=s.subject_prefix, name="nats"
    )


async def _open_rabbitmq(s: RabbitMQSettings) -> Sink:
    from tether.sinks.rabbitmq import RabbitMQSink

    assert s.url is not None  # enabled() says so
    return await RabbitMQSink.connect(
        s.url,
        exchange=s.exchange,
        name="rabbitmq",
        routing_key=s.routing_key,
        confirm_timeout=s.confirm_timeout,
        max_message_bytes=s.max_message_bytes,
    )


async def _open_redis(s: RedisStreamsSettings) -> Sink:
    from tether.sinks.redis_streams import RedisStreamsSink

    assert s.url is not None  # enabled() says so
    return await RedisStreamsSink.connect(
        s.url,
        name="redis",
        stream=s.stream,
        maxlen=s.maxlen,
        minid_age=s.minid_age,
        exact_trim=s.exact_trim,
        dedup_window=s.dedup_window,
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
RABBITMQ: SinkPlugin[RabbitMQSettings] = SinkPlugin(
    "rabbitmq",
    RabbitMQSettings,
    _open_rabbitmq,
    enabled=lambda s: s.url is not None,
    enable_hint="sinks.rabbitmq.url (RabbitMQ topic exchange, publisher confirms)",
)
REDIS: SinkPlugin[RedisStreamsSettings] = SinkPlugin(
    "redis",
    RedisStreamsSettings,
    _open_redis,
    enabled=lambda s: s.url is not None,
    enable_hint="sinks.redis.url (Redis Streams, one entry per event id)",
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
