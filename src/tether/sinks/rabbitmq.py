"""RabbitMQ sink (aio-pika): persistent messages on a durable topic exchange, publisher confirms.

* Each event is one persistent message (``delivery_mode=2``) on the exchange, routed by a
  template over the event (``"{topic}"`` by default; ``"{type}"``, ``"{tenant}.{topic}"``...).
* ``message_id`` is the event id, so consumers de-duplicate by it (RabbitMQ itself does not:
  a re-published event is delivered again). ``type``, ``timestamp`` and ``content_type``
  carry the CloudEvents ``type``, ``time`` and ``datacontenttype``; every other attribute
  travels as a ``cloudEvents_<name>`` header (the CloudEvents AMQP binding's prefix).
* A batch is pipelined: every message is written, then the confirms are awaited together.
  Messages are ``mandatory``: one no queue is bound for comes back (basic.return) and fails,
  retryable, instead of vanishing as a success.
* Per event: basic.ack → OK; returned, basic.nack (a full queue with ``x-overflow:
  reject-publish``) or the channel closed by the broker → failed, retryable; over
  ``max_message_bytes`` or an unusable routing key → failed, not retryable (sent, the first
  would make the broker close the channel and fail the whole batch).
* Connection down or lost during the call, or not one confirm within ``confirm_timeout`` →
  :class:`SinkUnavailableError` for the whole call. ``connect`` reconnects forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aio_pika
import aiormq
import aiormq.exceptions
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aiormq.abc import DeliveredMessage
from pamqp import commands as spec

from tether.core.envelope import Event
from tether.core.errors import ConfigError, SinkError, SinkUnavailableError
from tether.sinks import _keys
from tether.sinks.base import OK, Outcome, SinkFeatures

HEADER_PREFIX = "cloudEvents_"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
MAX_MESSAGE_BYTES = 128 * 1024 * 1024
"""RabbitMQ's default ``max_message_size`` (3.8 to 3.13; 4.x lowers it to 16 MiB)."""
_MAX_ROUTING_KEY = 255
_PERSISTENT = 2


class RabbitMQSink:
    """Publish events to a topic exchange. Build with :meth:`connect`."""

    features = SinkFeatures(
        dedups_by_id=False, durable=True, can_be_unavailable=True, fails_per_event=True
    )

    def __init__(
        self,
        connection: AbstractRobustConnection,
        channel: AbstractRobustChannel,
        exchange: str,
        *,
        name: str = "rabbitmq",
        routing_key: str = "{topic}",
        confirm_timeout: float = 5.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        if confirm_timeout <= 0:
            raise ConfigError(f"confirm_timeout must be positive, got {confirm_timeout!r}")
        if max_message_bytes <= 0:
            raise ConfigError(f"max_message_bytes must be positive, got {max_message_bytes!r}")
        self.name = name
        self.exchange = exchange
        self.confirm_timeout = confirm_timeout
        self.max_message_bytes = max_message_bytes
        self._routing_key = _keys.key_template(
            routing_key, what="routing key", max_bytes=_MAX_ROUTING_KEY
        )
        self._connection = connection
        self._channel = channel
        self._closed = False
        self.stats = {"published": 0, "returned": 0, "nacked": 0, "timeouts": 0}

    @classmethod
    async def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        exchange: str = "tether",
        name: str = "rabbitmq",
        routing_key: str = "{topic}",
        confirm_timeout: float = 5.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        connect_timeout: float = 5.0,
        reconnect_interval: float = 0.5,
    ) -> RabbitMQSink:
        """Connect (reconnecting forever after a broker restart), open a confirming channel
        and declare ``exchange`` as a durable topic exchange."""
        try:
            connection = await aio_pika.connect_robust(
                url, timeout=connect_timeout, reconnect_interval=reconnect_interval
            )
        except aiormq.exceptions.ProbableAuthenticationError as exc:
            raise ConfigError(f"RabbitMQ at {_redact(url)} refused the credentials: {exc}") from exc
        except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as exc:
            raise SinkUnavailableError(
                f"cannot reach RabbitMQ at {_redact(url)} within {connect_timeout}s: {exc!r}; "
                "check that rabbitmq-server is running"
            ) from exc
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=False)
            await _declare(channel, exchange)
            assert isinstance(channel, AbstractRobustChannel)
            return cls(
                connection,
                channel,
                exchange,
                name=name,
                routing_key=routing_key,
                confirm_timeout=confirm_timeout,
                max_message_bytes=max_message_bytes,
            )
        except BaseException:
            await connection.close()
            raise

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        channel = await self._usable_channel()
        outcomes: list[Outcome | None] = [None] * len(events)
        sends: dict[int, asyncio.Future[Any]] = {}
        for i, event in enumerate(events):
            prepared = self._prepare(event)
            if isinstance(prepared, Outcome):
                outcomes[i] = prepared
                continue
            key, properties = prepared
            sends[i] = asyncio.ensure_future(
                channel.basic_publish(
                    event.data,
                    exchange=self.exchange,
                    routing_key=key,
                    properties=properties,
                    mandatory=True,
                )
            )
        if sends:
            await self._settle(sends, outcomes)
        return [o or OK for o in outcomes]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._connection.close()

    # -- internals ---------------------------------------------------------------------------

    async def _usable_channel(self) -> aiormq.abc.AbstractChannel:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; create a new one to publish")
        if not self._connection.connected.is_set() or self._channel.is_closed:
            raise SinkUnavailableError(
                f"sink {self.name!r}: the RabbitMQ connection is down (reconnecting)"
            )
        try:
            async with asyncio.timeout(self.confirm_timeout):
                return await self._channel.get_underlay_channel()
        except (TimeoutError, aiormq.exceptions.ChannelInvalidStateError) as exc:
            raise SinkUnavailableError(f"sink {self.name!r}: no usable RabbitMQ channel") from exc

    def _prepare(self, event: Event) -> tuple[str, spec.Basic.Properties] | Outcome:
        try:
            key = self._routing_key(event)
        except _keys.KeyTemplateError as exc:
            return Outcome.failed(str(exc), retryable=False)
        if len(event.data) > self.max_message_bytes:
            return Outcome.failed(
                f"message of {len(event.data)} bytes is over max_message_bytes "
                f"({self.max_message_bytes}, the broker's max_message_size)",
                retryable=False,
            )
        return key, properties(event)

    async def _settle(
        self, sends: dict[int, asyncio.Future[Any]], outcomes: list[Outcome | None]
    ) -> None:
        done, pending = await asyncio.wait(sends.values(), timeout=self.confirm_timeout)
        for future in pending:
            future.cancel()
        if pending:
            await asyncio.wait(pending)
        lost: BaseException | None = None
        for i, future in sends.items():
            if future in pending:
                self.stats["timeouts"] += 1
                outcomes[i] = Outcome.failed(
                    f"RabbitMQ did not confirm within {self.confirm_timeout}s"
                )
                continue
            exc = asyncio.CancelledError() if future.cancelled() else future.exception()
            if exc is not None and _connection_lost(exc):
                lost = exc
                continue
            outcomes[i] = self._outcome(future.result() if exc is None else exc)
        if lost is not None:
            raise SinkUnavailableError(
                f"sink {self.name!r}: lost the RabbitMQ connection while publishing ({lost!r}); "
                "the batch will be re-published (consumers de-duplicate by message_id)"
            ) from lost
        if not done:
            raise SinkUnavailableError(
                f"sink {self.name!r}: RabbitMQ confirmed none of {len(sends)} message(s) "
                f"within {self.confirm_timeout}s"
            )

    def _outcome(self, result: object) -> Outcome:
        if isinstance(result, spec.Basic.Ack):
            self.stats["published"] += 1
            return OK
        if isinstance(result, DeliveredMessage | aiormq.exceptions.PublishError):
            self.stats["returned"] += 1
            message = result if isinstance(result, DeliveredMessage) else result.message
            return Outcome.failed(_returned(message, self.exchange))
        if isinstance(result, aiormq.exceptions.DeliveryError):
            self.stats["nacked"] += 1
            return Outcome.failed(
                "RabbitMQ refused the message (basic.nack): a queue it routes to may be full "
                "(x-overflow reject-publish) or unavailable"
            )
        if isinstance(result, aiormq.exceptions.ChannelClosed):
            return Outcome.failed(f"RabbitMQ closed the channel: {result}")
        return Outcome.failed(f"{type(result).__name__}: {result}")


def properties(event: Event) -> spec.Basic.Properties:
    """The AMQP properties of ``event``: persistent, ``message_id`` = event id, CloudEvents
    attributes as properties (type, time, content type) and ``cloudEvents_*`` headers."""
    attrs = event.cloudevent_attributes()
    content_type = attrs.pop("datacontenttype")
    return spec.Basic.Properties(
        content_type=content_type,
        delivery_mode=_PERSISTENT,
        message_id=attrs["id"],
        timestamp=event.created_at,
        message_type=event.type,
        headers={HEADER_PREFIX + k: v for k, v in attrs.items()},
    )


def cloudevent_attributes(message: aio_pika.abc.AbstractMessage) -> dict[str, str]:
    """Read the CloudEvents attributes back from a message this sink published."""
    attrs = {
        k[len(HEADER_PREFIX) :]: v.decode() if isinstance(v, bytes) else str(v)
        for k, v in (message.headers or {}).items()
        if k.startswith(HEADER_PREFIX)
    }
    if message.content_type:
        attrs["datacontenttype"] = message.content_type
    return attrs


async def _declare(channel: aio_pika.abc.AbstractChannel, exchange: str) -> None:
    try:
        await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise ConfigError(
            f"RabbitMQ exchange {exchange!r} exists with other settings ({exc}); the sink needs "
            "a durable topic exchange: choose another name or delete that exchange"
        ) from exc
    except aiormq.exceptions.ChannelAccessRefused as exc:
        raise ConfigError(
            f"RabbitMQ refused declaring exchange {exchange!r}: {exc}; grant the user "
            "configure permission on it, or declare it yourself as a durable topic exchange"
        ) from exc


def _connection_lost(exc: BaseException) -> bool:
    return isinstance(
        exc,
        aiormq.exceptions.AMQPConnectionError
        | aiormq.exceptions.ChannelInvalidStateError
        | ConnectionError
        | OSError
        | asyncio.CancelledError,
    )


def _returned(message: DeliveredMessage | None, exchange: str) -> str:
    if message is None:
        return f"unroutable: exchange {exchange!r} routes it to no queue (basic.return)"
    frame = message.delivery
    code = getattr(frame, "reply_code", 312)
    text = getattr(frame, "reply_text", "NO_ROUTE")
    return (
        f"unroutable: exchange {exchange!r} routes routing key {message.routing_key!r} to no "
        f"queue (basic.return {code} {text}); bind a queue for it"
    )


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
