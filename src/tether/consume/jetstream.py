"""NATS JetStream consumer adapter: a durable pull consumer that dead-letters into a stream.

What :meth:`JetStreamSource.connect` makes sure of, on the stream the sink writes to:

* a durable **pull consumer** ``<durable>`` on ``<stream>`` (explicit acks, ``max_deliver``
  -1 so the runner, not the server, decides when to give up; ``ack_wait`` = how long a message
  handed to a consumer that died stays invisible, default 30 s);
* a **dead-letter stream** ``<stream>_DLQ`` listening on ``dlq.<stream>.>``; each durable
  dead-letters onto its own subject ``dlq.<stream>.<durable>``.

The runner's verdicts map onto JetStream acks: ``ack`` → ``+ACK``; ``retry_later(delay)`` →
``-NAK {"delay": ...}`` (the server hands it out again after the delay, and the delivery count
comes from the server: ``num_delivered`` in the message's metadata); ``dead_letter`` →
publish a copy to the dead-letter subject, wait for its PubAck, then ``+TERM``.

The copy keeps the body and the original headers, plus the failure record
(:mod:`tether.consume.deadletter`, values percent-encoded like the sink's ``ce-*`` headers).
JetStream's own control headers (``Nats-*``) would act on the dead-letter stream, so they are
not copied; the original ``Nats-Msg-Id`` is kept as ``tether-dlq-msg-id``. The copy's own
``Nats-Msg-Id`` is ``<durable>:<stream sequence>``: a crash between the PubAck and the
``+TERM`` redelivers the message, and the second copy is dropped by the dead-letter stream's
duplicate window instead of being stored twice.

A replay republishes the original headers and body to the original subject with
``Nats-Msg-Id: <original id>:replay:<dead-letter sequence>``: the event id itself is still in
the origin stream's duplicate window when the replay comes within it (2 minutes by default),
and would be swallowed as a duplicate. ``ce-id`` stays the event id, so every consumer's inbox
still recognises the event; then the dead letter is deleted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.client import JetStreamContext

from tether.consume import deadletter
from tether.consume.port import DeadLetter, Delivery, Failure
from tether.core.errors import BrokerUnavailableError, ConfigError
from tether.sinks import _nats_wire as wire
from tether.sinks._nats_conn import close_quietly, log_error, shown_servers

log = logging.getLogger(__name__)

DEFAULT_URL = "nats://127.0.0.1:4222"
MSG_ID = "Nats-Msg-Id"
ORIGINAL_MSG_ID = "tether-dlq-msg-id"
"""Where the dead-letter copy keeps the original ``Nats-Msg-Id``."""
DLQ_DUPLICATE_WINDOW = 120.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
# A filter subject: dot-separated tokens, "*" for one token, ">" only as the last one.
_FILTER = re.compile(r"^(?:[^\s.*>]+|\*)(?:\.(?:[^\s.*>]+|\*))*(?:\.>)?$|^>$")
# No stream took a publish: nats-py says so with either, depending on the call.
_NO_STREAM = (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError)
_TIMEOUTS = (TimeoutError, nats.errors.TimeoutError, *_NO_STREAM)
_LINK_ERRORS = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
)


def dead_letter_stream(stream: str) -> str:
    """The stream that holds ``stream``'s dead letters."""
    return f"{stream}_DLQ"


def dead_letter_subject(stream: str, durable: str) -> str:
    """The subject ``durable``'s dead letters are published on."""
    return f"dlq.{stream}.{durable}"


def check_name(what: str, value: str) -> str:
    """Stream and durable names: they become subject tokens and the inbox's consumer name."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigError(
            f"{what} {value!r} is invalid: 1-128 letters, digits, '_' or '-', starting with a "
            "letter or digit"
        )
    return value


def check_filter(subject: str) -> str:
    if len(subject) > 1024 or not _FILTER.match(subject):
        raise ConfigError(
            f"filter subject {subject!r} is invalid: dot-separated non-empty tokens without "
            "whitespace; '*' stands for one token and '>' only for the last"
        )
    return subject


class _Link:
    """One owned NATS connection. nats-py reconnects it forever; if it ever ends up closed
    anyway (a fatal server error), the next call opens a new one and bumps ``generation``."""

    def __init__(self, url: str | list[str], connect_timeout: float, options: dict[str, Any]):
        if not 0 < connect_timeout <= 300:
            raise ConfigError(f"connect_timeout must be 0 to 300 seconds, got {connect_timeout!r}")
        self.url = url
        self.connect_timeout = connect_timeout
        self.options = options
        self.generation = 0
        self._nc: NATS | None = None
        self._closed = False

    async def open(self) -> NATS:
        nc = NATS()
        options: dict[str, Any] = {
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
            "connect_timeout": min(2.0, self.connect_timeout),
            "error_cb": log_error,
        }
        options.update(self.options)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await nc.connect(self.url, **options)
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            await close_quietly(nc)
            raise BrokerUnavailableError(
                f"cannot reach NATS at {shown_servers(self.url)} within {self.connect_timeout}s: "
                f"{exc!r}; "
                "check that nats-server is running with JetStream (-js)"
            ) from exc
        self._nc = nc
        self.generation += 1
        return nc

    async def client(self) -> NATS:
        """The connected client; :class:`BrokerUnavailableError` while it is down."""
        if self._closed:
            raise RuntimeError("this JetStream consumer connection is closed")
        nc = self._nc
        if nc is None or nc.is_closed:
            nc = await self.open()
        if not nc.is_connected:
            raise BrokerUnavailableError(
                f"NATS at {shown_servers(self.url)} is not connected (reconnecting)"
            )
        return nc

    async def close(self) -> None:
        self._closed = True
        if self._nc is not None:
            await close_quietly(self._nc)


class JetStreamSource:
    """A durable pull consumer on a JetStream stream. Build with :meth:`connect`."""

    def __init__(
        self,
        link: _Link,
        *,
        stream: str,
        durable: str,
        name: str | None = None,
        filter_subject: str | None = None,
        ack_wait: float = 30.0,
        publish_timeout: float = 5.0,
    ) -> None:
        self.stream = check_name("stream name", stream)
        self.durable = check_name("durable name", durable)
        self.name = name or durable
        self.filter_subject = None if filter_subject is None else check_filter(filter_subject)
        if not 0.1 <= ack_wait <= 86_400:
            raise ConfigError(f"ack_wait must be 0.1 to 86400 seconds, got {ack_wait!r}")
        if not 0 < publish_timeout <= 300:
            raise ConfigError(f"publish_timeout must be 0 to 300 seconds, got {publish_timeout!r}")
        self.ack_wait = float(ack_wait)
        self.publish_timeout = publish_timeout
        self.dead_letter_stream = dead_letter_stream(stream)
        self.dead_letter_subject = dead_letter_subject(stream, durable)
        self._link = link
        self._sub: JetStreamContext.PullSubscription | None = None
        self._ready = 0
        """The link generation the consumer and the dead-letter stream were last ensured on."""

    @classmethod
    async def connect(
        cls,
        url: str | list[str] = DEFAULT_URL,
        *,
        stream: str,
        durable: str,
        name: str | None = None,
        filter_subject: str | None = None,
        ack_wait: float = 30.0,
        publish_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        **nats_options: Any,
    ) -> JetStreamSource:
        """Connect, create the durable consumer and the dead-letter stream if missing (an
        existing consumer gets this ``ack_wait`` and ``max_deliver`` -1) and bind to it."""
        source = cls(
            _Link(url, connect_timeout, nats_options),
            stream=stream,
            durable=durable,
            name=name,
            filter_subject=filter_subject,
            ack_wait=ack_wait,
            publish_timeout=publish_timeout,
        )
        try:
            await source._pull()
        except BaseException:
            await source.close()
            raise
        return source

    async def receive(self, max_messages: int, wait: float) -> Sequence[Delivery]:
        sub = await self._pull()
        try:
            msgs = await sub.fetch(max_messages, timeout=max(wait, 0.01))
        except TimeoutError:  # nothing ready within ``wait`` (nats' TimeoutError is one too)
            msgs = []
        except nats.js.errors.APIError as exc:  # e.g. 409 consumer deleted: ensure it again
            self._ready = 0
            raise BrokerUnavailableError(
                f"consumer {self.durable!r} on stream {self.stream!r}: pull refused: {exc}"
            ) from exc
        except _LINK_ERRORS as exc:
            raise self._unavailable("receiving", exc) from exc
        if not msgs:
            await self._link.client()  # an empty fetch may be a dead link: say so
        return [self._delivery(msg) for msg in msgs]

    async def ack(self, delivery: Delivery) -> None:
        await self._settle(delivery, Msg.Ack.Ack, "acking")

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        payload = Msg.Ack.Nak
        if delay > 0:
            payload += b" " + json.dumps({"delay": int(delay * 1e9)}).encode()
        await self._settle(delivery, payload, "requeueing")

    async def dead_letter(self, delivery: Delivery, failure: Failure) -> None:
        msg = _msg_of(delivery)
        nc = await self._link.client()
        headers = self._copy_headers(delivery, msg, failure)
        try:
            try:
                await self._publish_copy(nc, delivery.data, headers)
            except _NO_STREAM:
                # No stream on the dead-letter subject (deleted meanwhile): create it, once.
                await self._ensure_dead_letter_stream(nc.jetstream())
                await self._publish_copy(nc, delivery.data, headers)
        except nats.js.errors.APIError as exc:  # e.g. the dead-letter stream is full
            raise BrokerUnavailableError(
                f"stream {self.dead_letter_stream!r} refused the dead-letter copy: {exc}"
            ) from exc
        except (*_TIMEOUTS, *_LINK_ERRORS) as exc:
            raise self._unavailable("dead-lettering", exc) from exc
        await self._settle(delivery, Msg.Ack.Term, "terminating")

    async def close(self) -> None:
        await self._link.close()

    # -- internals ---------------------------------------------------------------------------

    async def _pull(self) -> JetStreamContext.PullSubscription:
        nc = await self._link.client()
        if self._sub is None or self._ready != self._link.generation:
            js = nc.jetstream()
            try:
                await self._ensure_consumer(js)
                await self._ensure_dead_letter_stream(js)
                if self._sub is not None:
                    await _unsubscribe_quietly(self._sub)
                    self._sub = None
                self._sub = await js.pull_subscribe_bind(consumer=self.durable, stream=self.stream)
            except (*_TIMEOUTS, nats.js.errors.ServiceUnavailableError) as exc:
                raise BrokerUnavailableError(
                    f"JetStream at {self._link.url} did not answer while ensuring consumer "
                    f"{self.durable!r}: is it enabled (-js)? ({exc!r})"
                ) from exc
            except _LINK_ERRORS as exc:
                raise self._unavailable("ensuring the consumer", exc) from exc
            self._ready = self._link.generation
        return self._sub

    async def _ensure_consumer(self, js: JetStreamContext) -> None:
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            raise ConfigError(
                f"stream {self.stream!r} does not exist; the sink creates it "
                f"(JetStreamSink.connect(..., stream={self.stream!r}))"
            ) from None
        wanted = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            max_deliver=-1,
            filter_subject=self.filter_subject,
        )
        try:
            info = await js.consumer_info(self.stream, self.durable)
        except nats.js.errors.NotFoundError:
            await self._add_consumer(js, wanted)
            return
        config = info.config
        where = f"consumer {self.durable!r} on stream {self.stream!r}"
        if config.deliver_subject:
            raise ConfigError(f"{where} is a push consumer; use a new durable name for pulling")
        if config.ack_policy != AckPolicy.EXPLICIT:
            raise ConfigError(f"{where} has ack_policy {config.ack_policy}, not explicit")
        if (config.filter_subject or None) != self.filter_subject:
            # Changing the filter of a live consumer is refused here on purpose: a server of
            # the 2.9 line accepts it and then stops delivering.
            raise ConfigError(
                f"{where} filters {config.filter_subject!r}, not {self.filter_subject!r}; "
                "delete it or use another durable name"
            )
        if config.ack_wait != self.ack_wait or config.max_deliver != -1:
            await self._add_consumer(js, config.evolve(ack_wait=self.ack_wait, max_deliver=-1))

    async def _add_consumer(self, js: JetStreamContext, config: ConsumerConfig) -> None:
        try:
            await js.add_consumer(self.stream, config)
        except nats.js.errors.ServiceUnavailableError as exc:
            raise BrokerUnavailableError(
                f"JetStream could not create consumer {self.durable!r} now: {exc}"
            ) from exc
        except nats.js.errors.APIError as exc:
            raise ConfigError(
                f"JetStream refused consumer {self.durable!r} on stream {self.stream!r}: {exc}"
            ) from exc

    async def _ensure_dead_letter_stream(self, js: JetStreamContext) -> None:
        name = self.dead_letter_stream
        subjects = [f"dlq.{self.stream}.>"]
        try:
            info = await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            try:
                await js.add_stream(
                    StreamConfig(
                        name=name, subjects=subjects, duplicate_window=DLQ_DUPLICATE_WINDOW
                    )
                )
            except nats.js.errors.BadRequestError as exc:
                raise ConfigError(
                    f"cannot create dead-letter stream {name!r} on {subjects}: {exc} (does "
                    "another stream listen on those subjects?)"
                ) from exc
            return
        if not set(subjects) <= set(info.config.subjects or ()):
            raise ConfigError(
                f"stream {name!r} exists but does not listen on {subjects}; add them to it or "
                "delete it so the consumer can create it"
            )

    async def _publish_copy(self, nc: NATS, data: bytes, headers: dict[str, str]) -> None:
        await nc.jetstream().publish(
            self.dead_letter_subject, data, timeout=self.publish_timeout, headers=headers
        )

    def _copy_headers(self, delivery: Delivery, msg: Msg, failure: Failure) -> dict[str, str]:
        copy = {k: v for k, v in delivery.headers.items() if not k.lower().startswith("nats-")}
        original_id = _get(delivery.headers, MSG_ID)
        if original_id:
            copy[ORIGINAL_MSG_ID] = original_id
        record = deadletter.failure_headers(failure, delivery.origin)
        copy.update({k: wire.encode_value(v) for k, v in record.items()})
        copy[MSG_ID] = f"{self.durable}:{_stream_seq(msg)}"
        return copy

    async def _settle(self, delivery: Delivery, payload: bytes, doing: str) -> None:
        """Send an ack-family reply on the current connection: the ack subject names the
        stream, consumer and sequence, so it works on a client that reconnected too."""
        msg = _msg_of(delivery)
        nc = await self._link.client()
        try:
            await nc.publish(msg.reply, payload)
        except _LINK_ERRORS as exc:
            raise self._unavailable(doing, exc) from exc

    def _delivery(self, msg: Msg) -> Delivery:
        headers = {str(k): str(v) for k, v in (msg.headers or {}).items()}
        attributes = {
            k[3:].lower(): wire.decode_value(v)
            for k, v in headers.items()
            if len(k) > 3 and k[:3].lower() == wire.CE_PREFIX
        }
        try:
            deliveries = max(1, msg.metadata.num_delivered)
        except (ValueError, IndexError, TypeError):  # not a JetStream reply subject
            deliveries = 1
        return Delivery(attributes, msg.data or b"", deliveries, msg.subject, headers, msg)

    def _unavailable(self, doing: str, exc: BaseException) -> BrokerUnavailableError:
        return BrokerUnavailableError(
            f"consumer {self.durable!r}: lost NATS at {self._link.url} while {doing}: {exc!r}"
        )


class JetStreamDeadLetters:
    """The dead letters of one durable: ``dlq.<stream>.<durable>`` in ``<stream>_DLQ``."""

    def __init__(
        self, link: _Link, *, stream: str, durable: str, publish_timeout: float = 5.0
    ) -> None:
        self.stream = check_name("stream name", stream)
        self.durable = check_name("durable name", durable)
        self.dead_letter_stream = dead_letter_stream(stream)
        self.subject = dead_letter_subject(stream, durable)
        self.publish_timeout = publish_timeout
        self._link = link

    @classmethod
    async def connect(
        cls,
        url: str | list[str] = DEFAULT_URL,
        *,
        stream: str,
        durable: str,
        publish_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        **nats_options: Any,
    ) -> JetStreamDeadLetters:
        box = cls(
            _Link(url, connect_timeout, nats_options),
            stream=stream,
            durable=durable,
            publish_timeout=publish_timeout,
        )
        await box._link.open()
        return box

    async def list(self, limit: int = 100) -> Sequence[DeadLetter]:
        if isinstance(limit, bool) or not 1 <= limit <= 100_000:
            raise ConfigError(f"limit must be 1 to 100000, got {limit!r}")
        letters: list[DeadLetter] = []
        async for seq, headers, _ in self._walk():
            original = {
                k: wire.decode_value(v) for k, v in deadletter.original_headers(headers).items()
            }
            letters.append(deadletter.read_dead_letter(str(seq), *_split(headers), original))
            if len(letters) >= limit:
                break
        return letters

    async def replay(self, ids: Sequence[str] | None = None) -> int:
        replayed = 0
        if ids is None:
            # Only what is there now: a replay that fails again and is dead-lettered while
            # this loop runs lands behind it and waits for the next replay.
            async for seq, headers, data in self._walk(only_existing=True):
                replayed += await self._replay_one(seq, headers, data)
            return replayed
        if isinstance(ids, str):
            raise ConfigError(f"ids must be a list of dead letter ids, got the string {ids!r}")
        for text in ids:
            if not text.isdigit():
                raise ConfigError(
                    f"dead letter id {text!r} is not a stream sequence number (see dlq list)"
                )
        for text in ids:
            found = await self._get(int(text), next_=False)
            if found is None or found[3] != self.subject:
                log.warning(
                    "%s holds no dead letter %s of %s", self.dead_letter_stream, text, self.durable
                )
                continue
            replayed += await self._replay_one(*found[:3])
        return replayed

    async def close(self) -> None:
        await self._link.close()

    # -- internals ---------------------------------------------------------------------------

    async def _walk(
        self, *, only_existing: bool = False
    ) -> AsyncIterator[tuple[int, dict[str, str], bytes]]:
        """(sequence, headers, data) of each dead letter on this durable's subject, in order;
        with ``only_existing``, none stored after the walk began."""
        js = await self._js()
        try:
            info = await js.stream_info(self.dead_letter_stream)
        except nats.js.errors.NotFoundError:
            return  # nothing was ever dead-lettered
        except (*_TIMEOUTS, *_LINK_ERRORS) as exc:
            raise self._unavailable(exc) from exc
        seq = max(1, info.state.first_seq)
        last = info.state.last_seq if only_existing else None
        while last is None or seq <= last:
            found = await self._get(seq, next_=True)
            if found is None or (last is not None and found[0] > last):
                return
            yield found[:3]
            seq = found[0] + 1

    async def _get(self, seq: int, *, next_: bool) -> tuple[int, dict[str, str], bytes, str] | None:
        js = await self._js()
        try:
            raw = await js.get_msg(
                self.dead_letter_stream, seq, subject=self.subject if next_ else None, next=next_
            )
        except nats.js.errors.NotFoundError:
            return None
        except (*_TIMEOUTS, *_LINK_ERRORS) as exc:
            raise self._unavailable(exc) from exc
        headers = {str(k): str(v) for k, v in (raw.headers or {}).items()}
        return int(raw.seq or seq), headers, raw.data or b"", str(raw.subject)

    async def _replay_one(self, seq: int, headers: dict[str, str], data: bytes) -> int:
        origin = wire.decode_value(_get(headers, deadletter.ORIGIN) or "")
        try:
            wire.check_subject(origin)
        except wire.SubjectError:
            log.warning(
                "dead letter %s has no valid origin subject (%r); left in place", seq, origin
            )
            return 0
        original = deadletter.original_headers(headers)
        original_id = original.pop(ORIGINAL_MSG_ID, None) or _get(original, "ce-id") or str(seq)
        original[MSG_ID] = f"{original_id}:replay:{seq}"
        js = await self._js()
        try:
            await js.publish(origin, data, timeout=self.publish_timeout, headers=original)
        except _NO_STREAM as exc:
            await self._check_listened(js, origin, seq)
            # A stream listens but did not answer: its leader is being elected.
            raise self._unavailable(exc) from exc
        except nats.js.errors.APIError as exc:
            raise BrokerUnavailableError(f"replaying dead letter {seq} was refused: {exc}") from exc
        except (*_TIMEOUTS, *_LINK_ERRORS) as exc:
            raise self._unavailable(exc) from exc
        try:
            await js.delete_msg(self.dead_letter_stream, seq)
        except nats.js.errors.NotFoundError:
            pass  # deleted by a concurrent replay
        except (*_TIMEOUTS, *_LINK_ERRORS) as exc:
            raise self._unavailable(exc) from exc
        return 1

    async def _check_listened(self, js: JetStreamContext, origin: str, seq: int) -> None:
        """:class:`ConfigError` when no stream listens on ``origin`` any more."""
        try:
            await js.find_stream_name_by_subject(origin)
        except nats.js.errors.NotFoundError:
            raise ConfigError(
                f"no stream listens on {origin!r}, the origin of dead letter {seq}; it was "
                "left in the dead-letter stream"
            ) from None
        except (*_TIMEOUTS, *_LINK_ERRORS):
            pass  # JetStream cannot say either: treat it as unavailable

    async def _js(self) -> JetStreamContext:
        return (await self._link.client()).jetstream()

    def _unavailable(self, exc: BaseException) -> BrokerUnavailableError:
        return BrokerUnavailableError(
            f"dead letters of {self.durable!r}: NATS at {self._link.url} did not answer: {exc!r}"
        )


async def dead_letter_box(url: str, source: str, consumer: str) -> JetStreamDeadLetters:
    """The dead letters of durable ``consumer`` on stream ``source`` (for ``tether consume
    dlq``)."""
    return await JetStreamDeadLetters.connect(url, stream=source, durable=consumer)


def _split(headers: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The failure record and the CloudEvents attributes of a dead-letter copy, decoded."""
    record = {k: wire.decode_value(v) for k, v in headers.items() if k in deadletter.NAMES}
    attributes = {
        k[3:].lower(): wire.decode_value(v)
        for k, v in headers.items()
        if len(k) > 3 and k[:3].lower() == wire.CE_PREFIX
    }
    return record, attributes


def _get(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, ignoring case (NATS keeps the case each writer chose)."""
    found = headers.get(name)
    if found is not None:
        return found
    lower = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lower), None)


def _msg_of(delivery: Delivery) -> Msg:
    if not isinstance(delivery.handle, Msg) or not delivery.handle.reply:
        raise TypeError("this delivery did not come from a JetStreamSource")
    return delivery.handle


def _stream_seq(msg: Msg) -> str:
    try:
        return str(msg.metadata.sequence.stream)
    except (ValueError, IndexError, TypeError):
        return msg.reply


async def _unsubscribe_quietly(sub: JetStreamContext.PullSubscription) -> None:
    try:
        await sub.unsubscribe()
    except (nats.errors.Error, OSError):
        log.debug("error while dropping an old pull subscription", exc_info=True)
