"""Opening a consumer's dead-letter destination by broker name: what ``tether consume dlq``
and the dashboard's consumer dead-letter page share.

Each broker adapter offers ``dead_letter_box(url, source, consumer)``; its module is imported
only when its broker is named, so either works with just the extras of the brokers in use.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum

from tether.consume.port import DeadLetterBox
from tether.core.errors import ConfigError


class Broker(StrEnum):
    nats = "nats"
    rabbitmq = "rabbitmq"
    redis = "redis"


_MODULES = {
    Broker.nats: ("tether.consume.jetstream", "nats"),
    Broker.rabbitmq: ("tether.consume.rabbitmq", "rabbitmq"),
    Broker.redis: ("tether.consume.redis_streams", "redis"),
}
SOURCE_HELP = "JetStream stream, RabbitMQ exchange or Redis stream key the consumer reads."
CONSUMER_HELP = "Durable consumer (JetStream), queue (RabbitMQ) or group (Redis)."


def broker_of(name: str) -> Broker:
    """The broker called ``name``; a ConfigError naming the choices otherwise."""
    try:
        return Broker(name)
    except ValueError:
        choices = ", ".join(b.value for b in Broker)
        raise ConfigError(f"broker {name!r}: use one of {choices}") from None


@asynccontextmanager
async def dead_letter_box(
    broker: Broker, url: str, source: str, consumer: str
) -> AsyncIterator[DeadLetterBox]:
    """The dead letters of ``consumer`` on ``source`` at ``url``, closed when the block ends.
    Raises ConfigError when the broker's extra is missing or a name is invalid, and the
    adapter's BrokerUnavailableError (or OSError/TimeoutError) when it cannot be reached."""
    module_name, extra = _MODULES[broker]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"broker {broker.value} needs the {extra} extra: pip install 'tether[{extra}]' ({exc})"
        ) from None
    box: DeadLetterBox = await module.dead_letter_box(url, source, consumer)
    try:
        yield box
    finally:
        await box.close()
