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
* Fast path: the sink encodes a batch's frames itself (``_amqp_wire``) and registers one
  confirm future per delivery tag in aiormq's channel, then hands the batch to the writer at
  once; aiormq settles the futures on basic.ack/nack/return as for its own publishes. That
  touches aiormq's channel internals (``lock``, ``delivery_tag``, ``confirmations``,
  ``message_id_delivery_tag``, ``write_queue``); when they are missing, or with
  ``raw_frames=False``, each message goes through aiormq's public ``basic_publish``.
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
from aiormq.abc import ChannelFrame, DeliveredMessage
from pamqp import commands as spec

from tether.core.envelope import Event
from tether.core.errors import ConfigError, SinkError, SinkUnavailableError
from tether.core.redact import mask_url
from tether.sinks import _amqp_wire as wire
from tether.sinks import _keys
from tether.sinks.base import OK, Outcome, SinkFeatures

HEADER_PREFIX = wire.HEADER_PREFIX
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
MAX_MESSAGE_BYTES = 128 * 1024 * 1024
"""RabbitMQ's default ``max_message_size`` (3.8 to 3.13; 4.x lowers it to 16 MiB)."""
_MAX_ROUTING_KEY = 255


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
        raw_frames: bool = True,
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
        self._exchange_str = wire.shortstr(exchange)
        self._raw = raw_frames
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
        raw_frames: bool = True,
    ) -> RabbitMQSink:
        """Connect (reconnecting forever after a broker restart), open a confirming channel
        and declare ``exchange`` as a durable topic exchange."""
        _keys.key_template(routing_key, what="routing key", max_bytes=_MAX_ROUTING_KEY)
        try:
            connection = await aio_pika.connect_robust(
                url, timeout=connect_timeout, reconnect_interval=reconnect_interval
            )
        except aiormq.exceptions.ProbableAuthenticationError as exc:
            raise ConfigError(
                f"RabbitMQ at {mask_url(url)} refused the credentials: {exc}"
            ) from exc
        except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as exc:
            raise SinkUnavailableError(
                f"cannot reach RabbitMQ at {mask_url(url)} within {connect_timeout}s: {exc!r}; "
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
                raw_frames=raw_frames,
            )
        except BaseException:
            await connection.close()
            raise

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        channel = await self._usable_channel()
        outcomes: list[Outcome | None] = [None] * len(events)
        keys: dict[int, str] = {}
        for i, event in enumerate(events):
            checked = self._check(event)
            if isinstance(checked, Outcome):
                outcomes[i] = checked
            else:
                keys[i] = checked
        if not keys:
            return [o or OK for o in outcomes]
        if self._raw and _can_write_frames(channel):
            sends, tags = await self._write_frames(channel, events, keys)
        else:
            sends, tags = self._publish_each(channel, events, keys), {}
        try:
            await self._settle(sends, outcomes)
        except BaseException:  # cancelled (the relay's publish_timeout): stop waiting for all
            for future in sends.values():
                future.cancel()
            raise
        finally:
            _forget(channel, tags)
        return [o or OK for o in outcomes]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._connection.close()

    # -- internals ---------------------------------------------------------------------------

    def _connection_up(self) -> bool:
        # The connection, not the channel: the broker closes a channel for the event's own
        # fault (no such exchange), which stays a charged failure.
        return self._connection.connected.is_set()

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

    def _check(self, event: Event) -> str | Outcome:
        """The event's routing key, or the outcome of an event that cannot be sent."""
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
        return key

    async def _write_frames(
        self, channel: Any, events: Sequence[Event], keys: dict[int, str]
    ) -> tuple[dict[int, asyncio.Future[Any]], dict[str, int]]:
        """The fast path: encode every publish, register a confirm future per delivery tag
        in the channel, then hand the whole batch to the connection's writer at once (aiormq's
        ``basic_publish`` costs a task, a lock round and a write per message)."""
        number, limit = channel.number, channel.max_content_size
        frames = b"".join(
            wire.publish_frames(number, self._exchange_str, key, events[i], limit)
            for i, key in keys.items()
        )
        sends: dict[int, asyncio.Future[Any]] = {}
        tags: dict[str, int] = {}
        try:
            async with channel.lock:
                for i in keys:
                    channel.delivery_tag += 1
                    sends[i] = future = channel.create_future()
                    channel.confirmations[channel.delivery_tag] = future
                    message_id = str(events[i].id)
                    channel.message_id_delivery_tag[message_id] = tags[message_id] = (
                        channel.delivery_tag
                    )
                await channel.write_queue.put(ChannelFrame(payload=frames, should_close=False))
        except aiormq.exceptions.ChannelInvalidStateError as exc:
            raise SinkUnavailableError(f"sink {self.name!r}: the channel closed") from exc
        return sends, tags

    def _publish_each(
        self, channel: aiormq.abc.AbstractChannel, events: Sequence[Event], keys: dict[int, str]
    ) -> dict[int, asyncio.Future[Any]]:
        """The public path: aiormq's ``basic_publish`` per message, all in flight at once."""
        return {
            i: asyncio.ensure_future(
                channel.basic_publish(
                    events[i].data,
                    exchange=self.exchange,
                    routing_key=key,
                    properties=properties(events[i]),
                    mandatory=True,
                )
            )
            for i, key in keys.items()
        }

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
            # Whatever a publish raised while the connection is down (aio-pika's robust channel
            # can fail it with a bare RuntimeError "closed") says nothing of the event: the
            # batch goes back unspent, as for a lost connection, never charged an attempt.
            if exc is not None and (_connection_lost(exc) or not self._connection_up()):
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
        delivery_mode=wire.PERSISTENT,
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


def _can_write_frames(channel: object) -> bool:
    """Whether aiormq's channel still has the private parts the fast path uses."""
    names = ("lock", "delivery_tag", "confirmations", "message_id_delivery_tag", "write_queue")
    return all(hasattr(channel, n) for n in (*names, "number", "max_content_size"))


def _forget(channel: Any, tags: dict[str, int]) -> None:
    """Drop a settled batch from the channel's indexes: message id -> tag (aiormq finds
    returns through it) and the confirmations no confirm came for (a hung broker would
    otherwise grow them by a batch per attempt)."""
    if not tags:
        return
    index, waiting = channel.message_id_delivery_tag, channel.confirmations
    for message_id, tag in tags.items():
        if index.get(message_id) == tag:
            del index[message_id]
        future = waiting.get(tag)
        if future is not None and future.cancelled():
            del waiting[tag]


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
