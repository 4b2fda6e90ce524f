"""RabbitMQ consumer (aio-pika): a durable queue on the sink's exchange, retry queues per delay,
and a dead-letter queue.

* :meth:`RabbitMQSource.connect` declares the sink's durable topic exchange (so a consumer may
  start first), the durable ``queue`` (quorum by default) bound to it with ``bindings``, and
  ``<queue>.dlq``; it consumes with a bounded QoS (``prefetch`` unsettled messages).
* ``retry_later`` publishes a copy to ``<queue>.retry.<ms>`` (a queue whose TTL is the delay
  and whose dead-letter route is the default exchange back onto ``queue``) with the header
  ``x-tether-deliveries`` one higher, waits for the publisher confirm, then acks the original.
  Delays are rounded to preferred numbers (R20: 10.7 s -> 11.2 s) and at most
  ``max_retry_queues`` such queues are created by one source; past that a delay uses the
  nearest one it has.
* ``dead_letter`` publishes a copy (body, properties, original headers and the failure
  headers of :mod:`tether.consume.deadletter`) to ``<queue>.dlq``, confirmed, then acks.
* Delivery count = ``x-tether-deliveries`` of the copy (1 on the sink's original) plus the
  broker's redeliveries of that copy: ``x-delivery-count`` on a quorum queue, the
  ``redelivered`` flag (as one) on a classic queue.
* A message handed out and not settled within ``lease`` seconds is released (``basic.nack``
  with requeue) so another consumer gets it; a consumer whose connection died releases its
  messages at once (the broker requeues them).
* Connection or channel lost, or no answer within ``timeout`` -> :class:`BrokerUnavailableError`
  from every call; the next call reconnects. A verdict on a message handed out before the
  reconnect is dropped: the broker hands that message out again (the inbox makes it a
  duplicate).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aio_pika
import aio_pika.exceptions
import aiormq.exceptions
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)

from tether.consume import _rabbitmq_topology as topo
from tether.consume import deadletter
from tether.consume.port import DeadLetter, DeadLetterBox, Delivery, Failure
from tether.core.errors import BrokerUnavailableError, ConfigError, NotFoundError
from tether.core.redact import mask_url

log = logging.getLogger("tether.consume.rabbitmq")
T = TypeVar("T")

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
_PREFIX = "cloudEvents_"  # the sink's header prefix (the CloudEvents AMQP binding's)
_LOST = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    aio_pika.exceptions.ChannelClosed,
    ConnectionError,
    OSError,
    TimeoutError,
)
"""What a dead connection, a closed channel or a silent broker raises."""
_REFUSED = (aio_pika.exceptions.DeliveryError, aio_pika.exceptions.PublishError)
"""A copy the broker nacked or could not route: nothing was written."""
_Taken = list[AbstractIncomingMessage]
_REPLAY_MAX = 1_000_000


async def _amqp(step: Awaitable[T]) -> T:
    """``step``'s result. aiormq fails what was pending on a channel or connection that closed
    without a reason with a bare ``Exception``: that is a lost channel too."""
    try:
        return await step
    except Exception as exc:
        if type(exc) is Exception:
            raise aiormq.exceptions.ChannelInvalidStateError(f"closed: {exc!r}") from exc
        raise


@dataclass(frozen=True, slots=True)
class _Handle:
    generation: int
    message: AbstractIncomingMessage


@dataclass
class _Session:
    """One connection and its consuming channel; replaced whole when either is lost."""

    generation: int
    connection: AbstractConnection
    channel: AbstractChannel
    queue: AbstractQueue
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    buffer: collections.deque[AbstractIncomingMessage] = field(default_factory=collections.deque)
    out: dict[int, tuple[AbstractIncomingMessage, float]] = field(default_factory=dict)
    """Handed out and not settled: delivery tag -> (message, when handed out)."""
    asked: float = field(default_factory=time.monotonic)
    """When ``receive`` last ran."""
    watchdog: asyncio.Task[None] | None = None

    def gone(self, *_: object) -> None:
        self.lost.set()


class RabbitMQSource:
    """One consumer's queue. Build with :meth:`connect`."""

    def __init__(
        self,
        url: str,
        *,
        queue: str,
        exchange: str,
        bindings: Sequence[str],
        name: str,
        queue_type: topo.QueueType,
        prefetch: int,
        retry_delays: Sequence[float],
        max_retry_queues: int,
        lease: float | None,
        timeout: float,
    ) -> None:
        self.queue = topo.check_queue(queue)
        self.exchange = topo.check_exchange(exchange)
        self.bindings = topo.check_bindings(bindings)
        self.name = name
        if queue_type not in ("quorum", "classic"):
            raise ConfigError(f"queue_type must be 'quorum' or 'classic', got {queue_type!r}")
        if isinstance(prefetch, bool) or not 1 <= prefetch <= 65_535:
            raise ConfigError(f"prefetch must be 1 to 65535 messages, got {prefetch!r}")
        if isinstance(max_retry_queues, bool) or not 1 <= max_retry_queues <= 1000:
            raise ConfigError(f"max_retry_queues must be 1 to 1000, got {max_retry_queues!r}")
        if lease is not None and not 0 < lease <= 86_400:
            raise ConfigError(f"lease must be above 0 and at most 86400 seconds, got {lease!r}")
        if not 0 < timeout <= 300:
            raise ConfigError(f"timeout must be above 0 and at most 300 seconds, got {timeout!r}")
        self.queue_type = queue_type
        self.prefetch = prefetch
        self.max_retry_queues = max_retry_queues
        self.lease = lease
        self.timeout = timeout
        self._url = url
        self._retry_ms: set[int] = set()
        for delay in retry_delays:
            try:
                self._retry_ms.add(topo.delay_ms(delay))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"retry_delays: {exc}") from None
        if len(self._retry_ms) > max_retry_queues:
            raise ConfigError(
                f"retry_delays lists {len(self._retry_ms)} delays, over max_retry_queues "
                f"({max_retry_queues})"
            )
        self._declared: set[int] = set()
        self._tried: set[int] = set()
        self._session: _Session | None = None
        self._generation = 0
        self._reconnect = asyncio.Lock()
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        queue: str,
        exchange: str = "tether",
        bindings: Sequence[str] = ("#",),
        name: str | None = None,
        queue_type: topo.QueueType = "quorum",
        prefetch: int = 64,
        retry_delays: Sequence[float] = (),
        max_retry_queues: int = 32,
        lease: float | None = 300.0,
        timeout: float = 5.0,
    ) -> RabbitMQSource:
        """Declare the exchange, ``queue`` with its bindings and ``<queue>.dlq`` (and a retry
        queue per ``retry_delays``), and start consuming. ``name`` (the inbox's consumer name)
        defaults to ``queue``."""
        source = cls(
            url,
            queue=queue,
            exchange=exchange,
            bindings=bindings,
            name=name or queue,
            queue_type=queue_type,
            prefetch=prefetch,
            retry_delays=retry_delays,
            max_retry_queues=max_retry_queues,
            lease=lease,
            timeout=timeout,
        )
        session = await source._live()
        try:
            for ms in sorted(source._retry_ms):
                await source._retry_queue(session, ms)
        except BaseException:
            await source.close()
            raise
        return source

    @property
    def retry_queues(self) -> list[str]:
        """The retry queues this source has declared or tried to (a declare whose answer was
        lost with the connection may have created one); the broker may hold others' too."""
        return [topo.retry_queue(self.queue, ms) for ms in sorted(self._tried)]

    # -- the port ---------------------------------------------------------------------------

    async def receive(self, max_messages: int, wait: float) -> Sequence[Delivery]:
        session = await self._live()
        session.asked = time.monotonic()
        if not session.buffer:
            session.arrived.clear()
            waits = [asyncio.ensure_future(e.wait()) for e in (session.arrived, session.lost)]
            try:
                await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
        if session.lost.is_set():
            raise self._unavailable("the connection was lost while waiting for messages")
        out: list[Delivery] = []
        now = time.monotonic()
        while session.buffer and len(out) < max_messages:
            message = session.buffer.popleft()
            assert message.delivery_tag is not None
            session.out[message.delivery_tag] = (message, now)
            out.append(self._delivery(session, message))
        return out

    async def ack(self, delivery: Delivery) -> None:
        session, message = self._take(delivery)
        if message is not None:
            await self._settle(session, message.ack())

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        session, message = self._take(delivery)
        if message is None:
            return
        ms = topo.delay_ms(delay)
        headers = topo.copied(message.headers, (topo.DELIVERIES,))
        headers[topo.DELIVERIES] = delivery.deliveries + 1
        copy = _copy(message, headers)
        if ms == 0:
            await self._publish(session, message, copy, self.queue)
        else:
            target = await self._retry_queue(session, self._pick(ms))
            try:
                await self._publish(session, message, copy, target, release=False)
            except _REFUSED:  # the retry queue was deleted under us: declare it again, once
                self._declared.discard(self._pick(ms))
                target = await self._retry_queue(session, self._pick(ms))
                await self._publish(session, message, copy, target)
        await self._settle(session, message.ack())

    async def dead_letter(self, delivery: Delivery, failure: Failure) -> None:
        session, message = self._take(delivery)
        if message is None:
            return
        headers = topo.copied(message.headers)
        headers.update(deadletter.failure_headers(failure, self.queue))
        headers[topo.DLQ_ID] = uuid.uuid4().hex
        await self._publish(session, message, _copy(message, headers), topo.dlq(self.queue))
        await self._settle(session, message.ack())

    async def close(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await _shut(session)

    # -- sessions ---------------------------------------------------------------------------

    async def _live(self) -> _Session:
        if self._closed:
            raise RuntimeError(f"consumer source {self.name!r} is closed")
        session = self._session
        if session is not None and not session.lost.is_set():
            return session
        async with self._reconnect:
            session = self._session
            if session is not None and not session.lost.is_set():
                return session
            self._session = None
            if session is not None:
                await _shut(session)
            self._session = await self._open()
            return self._session

    async def _open(self) -> _Session:
        try:
            connection = await _amqp(aio_pika.connect(self._url, timeout=self.timeout))
        except aiormq.exceptions.ProbableAuthenticationError as exc:
            refused = f"refused the credentials: {exc}"
            if self._generation == 0:
                raise ConfigError(f"RabbitMQ at {mask_url(self._url)} {refused}") from exc
            # They worked before: a broker still starting, or a password being rotated. The
            # runner keeps trying; the log says why.
            raise self._unavailable(refused) from exc
        except (*_LOST, aiormq.exceptions.AMQPError) as exc:
            raise self._unavailable(f"cannot reach it within {self.timeout}s: {exc!r}") from exc
        self._generation += 1
        try:
            async with asyncio.timeout(self.timeout):
                session = await _amqp(self._setup(connection))
        except ConfigError:
            await _quietly_close(connection)
            raise
        except (*_LOST, aiormq.exceptions.AMQPError) as exc:
            await _quietly_close(connection)
            raise self._unavailable(f"setting up queue {self.queue!r} failed: {exc!r}") from exc
        except BaseException:
            await _quietly_close(connection)
            raise
        if self.lease is not None:
            session.watchdog = asyncio.ensure_future(self._release_overdue(session, self.lease))
        return session

    async def _setup(self, connection: AbstractConnection) -> _Session:
        """The consuming channel on a new connection: QoS, every queue declared, consuming."""
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=self.prefetch)
        queue = await _declare_consumer_queues(channel, self)
        session = _Session(self._generation, connection, channel, queue)
        connection.close_callbacks.add(session.gone)
        channel.close_callbacks.add(session.gone)

        async def arrive(message: AbstractIncomingMessage) -> None:
            # A lost session's messages go back to the queue when its connection closes;
            # only a live one buffers.
            if not session.lost.is_set():
                session.buffer.append(message)
                session.arrived.set()

        await queue.consume(arrive)
        return session

    async def _release_overdue(self, session: _Session, lease: float) -> None:
        """Hand back what this process holds and will not settle soon: a message handed out
        and not settled within ``lease`` (a stuck handler), and the prefetched ones when
        ``receive`` has not run for ``lease`` (a process that stopped asking without closing
        its connection). The broker counts each as a delivery, as it does for the prefetched
        messages of a consumer that died."""
        tick = min(lease / 4, 1.0)
        while not session.lost.is_set():
            await asyncio.sleep(tick)
            now = time.monotonic()
            overdue = [tag for tag, (_, since) in session.out.items() if now - since >= lease]
            released = [session.out.pop(tag)[0] for tag in overdue]
            if session.buffer and now - session.asked >= lease:
                released += session.buffer
                session.buffer.clear()
            for message in released:
                log.warning(
                    "consumer %s: message %s not settled within %.1fs; released to the queue",
                    self.name,
                    message.message_id,
                    lease,
                )
                try:
                    await _amqp(message.nack(requeue=True))
                except _LOST:
                    session.gone()
                    return

    def _take(self, delivery: Delivery) -> tuple[_Session, AbstractIncomingMessage | None]:
        """The session and message to settle; no message when the delivery is stale (from a
        lost connection, or released after its lease): the broker hands it out again."""
        handle = delivery.handle
        if not isinstance(handle, _Handle):
            raise TypeError(f"delivery {delivery.event_id} did not come from this source")
        session = self._session
        if session is None or session.lost.is_set():
            raise self._unavailable("the connection is down (reconnecting)")
        tag = handle.message.delivery_tag
        if handle.generation != session.generation or tag is None:
            return session, None
        taken = session.out.pop(tag, None)
        return session, None if taken is None else taken[0]

    async def _settle(self, session: _Session, settle: Any) -> None:
        try:
            await _amqp(settle)
        except (*_LOST, aiormq.exceptions.AMQPError) as exc:
            session.gone()
            raise self._unavailable(f"settling a message failed: {exc!r}") from exc

    async def _publish(
        self,
        session: _Session,
        original: AbstractIncomingMessage,
        copy: aio_pika.Message,
        queue: str,
        *,
        release: bool = True,
    ) -> None:
        """Write ``copy`` to ``queue`` and wait for its confirm. When the broker refuses it,
        the original goes back to the queue (``release``) and the caller sees the error."""
        try:
            await _amqp(
                session.channel.default_exchange.publish(
                    copy, routing_key=queue, mandatory=True, timeout=self.timeout
                )
            )
        except _REFUSED as exc:
            if release:
                with contextlib.suppress(*_LOST):
                    await _amqp(original.nack(requeue=True))
                # A queue deleted under us: the next call reconnects and declares them all.
                session.gone()
                raise self._unavailable(f"RabbitMQ refused the copy for {queue!r}: {exc}") from exc
            raise
        except (*_LOST, aiormq.exceptions.AMQPError) as exc:
            session.gone()
            raise self._unavailable(f"publishing to {queue!r} failed: {exc!r}") from exc

    def _pick(self, ms: int) -> int:
        if ms in self._retry_ms or len(self._retry_ms) < self.max_retry_queues:
            return ms
        return topo.nearest(ms, self._retry_ms)

    async def _retry_queue(self, session: _Session, ms: int) -> str:
        name = topo.retry_queue(self.queue, ms)
        if ms in self._declared:
            return name
        self._tried.add(ms)
        try:
            async with asyncio.timeout(self.timeout):
                await _amqp(
                    _declare(
                        session.channel, name, topo.retry_arguments(self.queue, self.queue_type, ms)
                    )
                )
        except ConfigError:
            session.gone()  # the broker closed the channel on the conflict
            raise
        except (*_LOST, aiormq.exceptions.AMQPError) as exc:
            session.gone()
            raise self._unavailable(f"declaring retry queue {name!r} failed: {exc!r}") from exc
        self._retry_ms.add(ms)
        self._declared.add(ms)
        return name

    def _delivery(self, session: _Session, message: AbstractIncomingMessage) -> Delivery:
        headers = message.headers or {}
        attributes = {
            k[len(_PREFIX) :]: topo.text(v) for k, v in headers.items() if k.startswith(_PREFIX)
        }
        if message.content_type:
            attributes["datacontenttype"] = message.content_type
        return Delivery(
            attributes=attributes,
            data=message.body,
            deliveries=topo.handed_out(headers, bool(message.redelivered)),
            origin=self.queue,
            headers={k: topo.text(v) for k, v in headers.items()},
            handle=_Handle(session.generation, message),
        )

    def _unavailable(self, what: str) -> BrokerUnavailableError:
        return BrokerUnavailableError(
            f"consumer {self.name!r}: RabbitMQ at {mask_url(self._url)}: {what}"
        )


class RabbitMQDeadLetters:
    """The dead-letter queue ``<queue>.dlq`` of one consumer queue. Build with :meth:`open`."""

    def __init__(
        self, connection: AbstractConnection, channel: AbstractChannel, queue: str, timeout: float
    ) -> None:
        self.queue = queue
        self.timeout = timeout
        self._connection = connection
        self._channel = channel

    @classmethod
    async def open(
        cls,
        url: str = DEFAULT_URL,
        *,
        queue: str,
        exchange: str | None = None,
        timeout: float = 5.0,
    ) -> RabbitMQDeadLetters:
        """Open ``<queue>.dlq`` (which must exist: a consumer declares it). ``exchange``, when
        given, must exist too: it catches a mistyped ``--source``."""
        topo.check_queue(queue)
        if exchange is not None:
            topo.check_exchange(exchange)
        try:
            connection = await _amqp(aio_pika.connect(url, timeout=timeout))
        except aiormq.exceptions.ProbableAuthenticationError as exc:
            raise ConfigError(
                f"RabbitMQ at {mask_url(url)} refused the credentials: {exc}"
            ) from exc
        except (*_LOST, aiormq.exceptions.AMQPError) as exc:
            raise BrokerUnavailableError(
                f"cannot reach RabbitMQ at {mask_url(url)} within {timeout}s: {exc!r}"
            ) from exc
        try:
            if exchange is not None:
                await _exists(connection, "exchange", exchange)
            for name in (queue, topo.dlq(queue)):
                await _exists(connection, "queue", name)
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        except (*_LOST, aiormq.exceptions.AMQPError) as exc:
            await _quietly_close(connection)
            raise BrokerUnavailableError(
                f"opening dead-letter queue {topo.dlq(queue)!r} failed: {exc!r}"
            ) from exc
        except BaseException:
            await _quietly_close(connection)
            raise
        return cls(connection, channel, queue, timeout)

    async def list(self, limit: int = 100) -> Sequence[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first; each is peeked (taken unacked, then put
        back with ``basic.nack`` requeue), so nothing leaves the queue."""
        if isinstance(limit, bool) or limit < 1:
            raise ConfigError(f"limit must be at least 1, got {limit!r}")
        letters: list[DeadLetter] = []
        async with self._taking() as taken:
            while len(taken) < limit and (message := await self._get()) is not None:
                taken.append(message)
                letters.append(_dead_letter(message))
        return letters

    async def replay(self, ids: Sequence[str] | None = None) -> int:
        """Move these dead letters (all when None) back onto the queue through the default
        exchange, with their failure headers and delivery count gone; each copy is confirmed
        before its dead letter is acked."""
        if isinstance(ids, str):
            raise ConfigError(f"ids must be a list of dead-letter ids, got the string {ids!r}")
        wanted = None if ids is None else set(ids)
        replayed = 0
        async with self._taking() as kept:
            # The ones kept stay taken until the end, so each message is looked at once; the
            # bound only stops a replay racing a flood of new dead letters.
            for _ in range(_REPLAY_MAX):
                message = await self._get()
                if message is None:
                    break
                letter_id = topo.dlq_id(message.headers, message.message_id, message.body)
                if wanted is not None and letter_id not in wanted:
                    kept.append(message)
                    continue
                copy = _copy(message, topo.replayed(message.headers))
                await self._call(
                    self._channel.default_exchange.publish(
                        copy, routing_key=self.queue, mandatory=True, timeout=self.timeout
                    )
                )
                await self._call(message.ack())
                replayed += 1
        return replayed

    async def close(self) -> None:
        await _quietly_close(self._connection)

    @contextlib.asynccontextmanager
    async def _taking(self) -> AsyncIterator[_Taken]:
        """Messages taken unacked in the block go back to the queue when it ends."""
        taken: _Taken = []
        try:
            yield taken
        finally:
            for message in taken:
                with contextlib.suppress(*_LOST, aiormq.exceptions.AMQPError):
                    await _amqp(message.nack(requeue=True))

    async def _get(self) -> AbstractIncomingMessage | None:
        queue = await self._call(self._channel.get_queue(topo.dlq(self.queue), ensure=False))
        message: AbstractIncomingMessage | None = await self._call(
            queue.get(no_ack=False, fail=False, timeout=self.timeout)
        )
        return message

    async def _call(self, step: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await _amqp(step)
        except (*_LOST, *_REFUSED, aiormq.exceptions.AMQPError) as exc:
            raise BrokerUnavailableError(
                f"dead-letter queue {topo.dlq(self.queue)!r}: RabbitMQ failed: {exc!r}"
            ) from exc


async def dead_letter_box(url: str, source: str, consumer: str) -> DeadLetterBox:
    """The dead-letter queue of consumer queue ``consumer`` bound to exchange ``source`` (the
    exchange the sink publishes to): ``tether consume dlq list|replay --broker rabbitmq``."""
    return await RabbitMQDeadLetters.open(url, queue=consumer, exchange=source)


# -- helpers ----------------------------------------------------------------------------------


async def _declare_consumer_queues(
    channel: AbstractChannel, source: RabbitMQSource
) -> AbstractQueue:
    try:
        await channel.declare_exchange(source.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise ConfigError(
            f"RabbitMQ exchange {source.exchange!r} exists with other settings ({exc}); the "
            "consumer binds to a durable topic exchange, as the sink declares it"
        ) from exc
    await _declare(channel, topo.dlq(source.queue), topo.dlq_arguments())
    queue = await _declare(
        channel, source.queue, topo.main_arguments(source.queue, source.queue_type)
    )
    for key in source.bindings:
        await queue.bind(source.exchange, key)
    return queue


async def _declare(channel: AbstractChannel, name: str, arguments: dict[str, Any]) -> AbstractQueue:
    try:
        return await channel.declare_queue(name, durable=True, arguments=arguments)
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise ConfigError(
            f"RabbitMQ queue {name!r} exists with other settings ({exc}); the consumer needs "
            f"{arguments}: delete the queue or choose another name"
        ) from exc
    except aiormq.exceptions.ChannelAccessRefused as exc:
        raise ConfigError(f"RabbitMQ refused declaring queue {name!r}: {exc}") from exc


async def _exists(connection: AbstractConnection, kind: str, name: str) -> None:
    """A passive declare, on a channel of its own (a missing name closes the channel)."""
    channel = await connection.channel()
    try:
        if kind == "queue":
            await _amqp(channel.declare_queue(name, passive=True))
        else:
            await _amqp(channel.declare_exchange(name, passive=True))
    except aiormq.exceptions.ChannelNotFoundEntity:
        raise NotFoundError(
            f"RabbitMQ has no {kind} {name!r}: check the names (a consumer declares its queues "
            "when it connects)"
        ) from None
    with contextlib.suppress(*_LOST, aiormq.exceptions.AMQPError):
        await channel.close()


def _copy(message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
    """A persistent copy with the original's body and properties. ``expiration`` is dropped
    (a copy waiting for its retry must not expire) and so is ``user_id`` (the broker checks
    it against the publishing user)."""
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )


def _dead_letter(message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    attributes = {
        k[len(_PREFIX) :]: topo.text(v) for k, v in headers.items() if k.startswith(_PREFIX)
    }
    return deadletter.read_dead_letter(
        topo.dlq_id(headers, message.message_id, message.body),
        topo.dead_letter_headers(headers),
        attributes,
        {k: topo.text(v) for k, v in topo.replayed(headers).items()},
    )


async def _shut(session: _Session) -> None:
    session.lost.set()
    if session.watchdog is not None:
        session.watchdog.cancel()
        with contextlib.suppress(BaseException):
            await session.watchdog
    session.buffer.clear()
    session.out.clear()
    await _quietly_close(session.connection)


async def _quietly_close(connection: AbstractConnection) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5.0):
            await connection.close()
