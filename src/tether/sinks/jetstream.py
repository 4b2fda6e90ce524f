"""NATS JetStream sink: the relay's main target.

Each event is published to its stream subject with core NATS ``HPUB`` and a reply subject
``<inbox>.<n>``; JetStream answers every stored message with a PubAck on that reply subject,
and ONE wildcard subscription (``<inbox>.*``) matches the acks to the events of the batch.
This avoids nats-py's per-message JetStream machinery (a future, a semaphore and a request
per message), which caps near 16-18k msg/s; see ``docs/sinks.md`` for figures.

* The event id is the ``Nats-Msg-Id`` header, so JetStream's duplicate window drops a
  re-publish; a ``duplicate`` PubAck counts as OK.
* Headers carry the envelope in the CloudEvents NATS binary mode: ``ce-id``, ``ce-type``, ...
* Per event: PubAck → OK; error ack → failed (5xx retryable, 4xx not); no ack before the
  batch's deadline → failed, retryable.
* Connection down or closed → :class:`SinkUnavailableError` for the whole call.
* No stream took an event (a bare 503): JetStream is asked whether a stream listens on its
  subject. None does → failed, retryable; one does (its leader is being elected after a
  cluster node left) or JetStream cannot say → :class:`SinkUnavailableError`, so the relay
  waits for the new leader without spending attempts.

The fast path writes a batch's pre-encoded HPUB frames into nats-py's output buffer in one
go, and on a connection it owns settles PubAcks straight from nats-py's parser: both touch
nats-py's private API, all of it in ``_nats_private`` with a public fallback
(``raw_frames=False`` / ``fast_acks=False`` force the public paths).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import StreamConfig

from tether.core.envelope import Event
from tether.core.errors import ConfigError, SinkError, SinkUnavailableError
from tether.sinks import _nats_private as private
from tether.sinks import _nats_wire as wire
from tether.sinks._nats_conn import close_quietly, log_error, shown_servers
from tether.sinks.base import OK, Outcome, SinkFeatures

log = logging.getLogger(__name__)

decode_header_value = wire.decode_value
"""Readers of ``ce-*`` headers apply this: non-ASCII, "%", CR and LF travel percent-encoded."""

DEFAULT_SUBJECT = "{prefix}.{topic}"
_CHUNK_BYTES = 256 * 1024


class _Batch:
    __slots__ = ("done", "outcomes", "remaining", "unheard")

    def __init__(self, size: int) -> None:
        self.outcomes: list[Outcome | None] = [None] * size
        self.remaining = 0
        self.unheard: list[int] = []  # events no stream took (a bare 503 status)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class _Disconnected(Exception):
    pass


class JetStreamSink:
    """Publish events to JetStream. Build with :meth:`connect` (owns its connection) or pass
    an existing nats-py client (the caller keeps owning it)."""

    features = SinkFeatures(
        dedups_by_id=True, durable=True, can_be_unavailable=True, fails_per_event=True
    )

    def __init__(
        self,
        nc: NATS,
        *,
        name: str = "jetstream",
        subject_prefix: str = "tether",
        subject: str | Callable[[Event], str] = DEFAULT_SUBJECT,
        ack_timeout: float = 5.0,
        raw_frames: bool = True,
        fast_acks: bool = True,
        owns_connection: bool = False,
    ) -> None:
        if ack_timeout <= 0:
            raise ConfigError(f"ack_timeout must be positive, got {ack_timeout!r}")
        self.name = name
        self.subject_prefix = subject_prefix
        self.ack_timeout = ack_timeout
        self._subject = _subject_fn(subject, subject_prefix)
        self._nc = nc
        self._owns = owns_connection
        self._raw = raw_frames and private.can_write_frames(nc)
        self._fast_acks = fast_acks
        self._sub: Subscription | None = None
        self._inbox = ""
        self._seq = 0
        self._pending: dict[str, tuple[_Batch, int]] = {}
        self._in_flight: set[_Batch] = set()
        self._closed = False
        self.stats = {"published": 0, "duplicates": 0, "refused": 0, "timeouts": 0}

    @classmethod
    async def connect(
        cls,
        servers: str | list[str] = "nats://127.0.0.1:4222",
        *,
        stream: str | None = None,
        duplicate_window: float = 120.0,
        connect_timeout: float = 5.0,
        name: str = "jetstream",
        subject_prefix: str = "tether",
        subject: str | Callable[[Event], str] = DEFAULT_SUBJECT,
        ack_timeout: float = 5.0,
        raw_frames: bool = True,
        fast_acks: bool = True,
        **nats_options: Any,
    ) -> JetStreamSink:
        """Connect (reconnecting forever after a server restart) and, if ``stream`` is
        given, make sure a stream named so listens on ``<subject_prefix>.>``."""
        nc = NATS()
        sink = cls(
            nc,
            name=name,
            subject_prefix=subject_prefix,
            subject=subject,
            ack_timeout=ack_timeout,
            raw_frames=raw_frames,
            fast_acks=fast_acks,
            owns_connection=True,
        )
        options: dict[str, Any] = {
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
            "connect_timeout": min(2.0, connect_timeout),
            "error_cb": log_error,
            "disconnected_cb": sink._on_disconnected,
        }
        options.update(nats_options)
        try:
            async with asyncio.timeout(connect_timeout):
                await nc.connect(servers, **options)
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            await close_quietly(nc)
            raise SinkUnavailableError(
                f"cannot reach NATS at {shown_servers(servers)} within {connect_timeout}s: "
                f"{exc!r}; "
                "check that nats-server is running with JetStream (-js)"
            ) from exc
        sink._raw = raw_frames and private.can_write_frames(nc)
        try:
            await sink.start()
            if stream is not None:
                await sink.ensure_stream(stream, [f"{subject_prefix}.>"], duplicate_window)
        except BaseException:
            await close_quietly(nc)
            raise
        return sink

    async def start(self) -> None:
        """Subscribe to the reply inbox; ``publish`` does it on first use if needed."""
        if self._sub is None:
            self._inbox = self._nc.new_inbox()
            self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_ack)
            self._inbox += "."
            if self._fast_acks and self._owns:
                private.hook_acks(self._nc, self._sub, self._settle_raw)

    async def ensure_stream(
        self, name: str, subjects: Sequence[str], duplicate_window: float = 120.0
    ) -> None:
        """Create the stream if it is missing; an existing one must already cover ``subjects``."""
        jsm = self._nc.jetstream()
        try:
            try:
                info = await jsm.stream_info(name)
            except nats.js.errors.NotFoundError:
                config = StreamConfig(
                    name=name, subjects=list(subjects), duplicate_window=duplicate_window
                )
                await jsm.add_stream(config)
                return
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            raise SinkUnavailableError(
                f"JetStream did not answer while ensuring stream {name!r}: is it enabled (-js)?"
            ) from exc
        missing = set(subjects) - set(info.config.subjects or ())
        if missing:
            raise ConfigError(
                f"stream {name!r} exists but does not listen on {sorted(missing)}; "
                "add those subjects to it or choose another stream name"
            )

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        nc = self._check_usable()
        if self._sub is None:
            await self.start()
        batch = _Batch(len(events))
        self._in_flight.add(batch)
        keys: list[str] = []
        try:
            if self._raw:
                await private.write_frames(nc, self._encode(events, batch, keys))
            else:
                await self._publish_each(events, batch, keys)
            if keys:
                await self._wait_for_acks(batch)
                if all(key in self._pending for key in keys):
                    # Not one ack for the whole batch: a hung server or a stream that stopped
                    # answering, not a fault of these events. Raising keeps their attempts.
                    raise SinkUnavailableError(
                        f"sink {self.name!r}: JetStream acknowledged none of {len(keys)} "
                        f"event(s) within {self.ack_timeout}s"
                    )
                if batch.unheard:
                    await self._check_unheard(events, batch)
        except (_Disconnected, nats.errors.ConnectionClosedError, OSError) as exc:
            raise SinkUnavailableError(
                f"sink {self.name!r}: lost the NATS connection while publishing; "
                "the batch will be re-published (duplicates are dropped by Nats-Msg-Id)"
            ) from exc
        finally:
            self._in_flight.discard(batch)
            pending = self._pending
            for key in keys:
                pending.pop(key, None)
        return _finish(batch, self.stats, self.ack_timeout)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._fail_in_flight()
        if self._owns:
            await close_quietly(self._nc)
        elif self._sub is not None and not self._nc.is_closed:
            await self._sub.unsubscribe()

    # -- internals ---------------------------------------------------------------------------

    def _check_usable(self) -> NATS:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; create a new one to publish")
        nc = self._nc
        if not nc.is_connected:
            state = "closed" if nc.is_closed else "not connected (reconnecting)"
            raise SinkUnavailableError(f"sink {self.name!r}: NATS connection is {state}")
        return nc

    async def _wait_for_acks(self, batch: _Batch) -> None:
        """Until every ack is in or the deadline passes. The connection state is looked at
        every 250 ms too: on a caller-owned client no ``disconnected_cb`` tells us."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ack_timeout
        done = batch.done
        while not done.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await asyncio.wait((done,), timeout=min(remaining, 0.25))
            if not done.done() and not self._nc.is_connected:
                raise _Disconnected
        done.result()

    async def _check_unheard(self, events: Sequence[Event], batch: _Batch) -> None:
        """Events no stream took: a missing stream fails them (retryable, as before); a stream
        that exists but has no leader, or a JetStream that cannot say, is a whole-sink
        condition. Only this failure path asks JetStream; the subject of every such event was
        computed once already, so computing it again cannot fail."""
        subjects = {i: self._subject(events[i]) for i in batch.unheard}
        for subject in sorted(set(subjects.values())):
            if await self._stream_may_listen(subject):
                raise SinkUnavailableError(
                    f"sink {self.name!r}: no stream took the events for {subject!r} although "
                    "JetStream has one listening on it (or could not say): its leader is "
                    "being elected; the batch will be re-published"
                )
        for i, subject in subjects.items():  # name the event's subject, not the reply inbox
            batch.outcomes[i] = Outcome.failed(wire.no_stream_error(subject), retryable=True)

    async def _stream_may_listen(self, subject: str) -> bool:
        """False only when JetStream answers that no stream listens on ``subject``."""
        jsm = self._nc.jetstream(timeout=min(1.0, self.ack_timeout))
        try:
            await jsm.find_stream_name_by_subject(subject)
        except nats.js.errors.NotFoundError:
            return False
        except (nats.errors.Error, OSError) as exc:  # API timeout, no meta leader, ...
            log.debug("stream lookup for %r failed: %r", subject, exc)
        return True

    def _encode(self, events: Sequence[Event], batch: _Batch, keys: list[str]) -> list[bytes]:
        """HPUB frames of the publishable events, joined into chunks of ~256 KiB; each one
        gets a reply subject registered in ``_pending`` (appended to ``keys``). Events that
        cannot be published get their failed outcome at once."""
        pending = self._pending
        inbox = self._inbox
        seq = self._seq
        subject_of = self._subject
        max_payload = self._nc.max_payload
        outcomes = batch.outcomes
        chunks: list[bytes] = []
        parts: list[bytes] = []
        size = 0
        for i, event in enumerate(events):
            try:
                subject = subject_of(event)
            except wire.SubjectError as exc:
                outcomes[i] = Outcome.failed(str(exc), retryable=False)
                continue
            text = wire.header_text(event)
            data = event.data
            seq += 1
            reply = f"{inbox}{seq}"
            if text.isascii():
                hlen = len(text)
                total = hlen + len(data)
                head = f"HPUB {subject} {reply} {hlen} {total}\r\n{text}".encode()
            else:
                hdr = text.encode()
                hlen = len(hdr)
                total = hlen + len(data)
                head = f"HPUB {subject} {reply} {hlen} {total}\r\n".encode() + hdr
            if total > max_payload:
                outcomes[i] = _too_big(total, max_payload)
                continue
            pending[reply] = (batch, i)
            keys.append(reply)
            parts += (head, data, b"\r\n")
            size += len(head) + total
            if size >= _CHUNK_BYTES:
                chunks.append(b"".join(parts))
                parts, size = [], 0
        if parts:
            chunks.append(b"".join(parts))
        self._seq = seq
        batch.remaining = len(keys)
        return chunks

    async def _publish_each(self, events: Sequence[Event], batch: _Batch, keys: list[str]) -> None:
        """The same through nats-py's public ``publish`` (slower: it encodes the headers)."""
        max_payload = self._nc.max_payload
        todo: list[tuple[str, str, Event]] = []
        for i, event in enumerate(events):
            try:
                subject = self._subject(event)
            except wire.SubjectError as exc:
                batch.outcomes[i] = Outcome.failed(str(exc), retryable=False)
                continue
            total = len(wire.header_block(event)) + len(event.data)
            if total > max_payload:
                batch.outcomes[i] = _too_big(total, max_payload)
                continue
            self._seq += 1
            reply = f"{self._inbox}{self._seq}"
            self._pending[reply] = (batch, i)
            keys.append(reply)
            todo.append((subject, reply, event))
        batch.remaining = len(keys)
        for subject, reply, event in todo:
            await self._nc.publish(subject, event.data, reply, wire.header_dict(event))

    async def _on_ack(self, msg: Msg) -> None:
        entry = self._pending.pop(msg.subject, None)
        if entry is not None:  # else: a late ack of a batch that already timed out
            status = msg.headers.get("Status") if msg.headers else None
            self._settle(entry, msg.data, status, msg.subject)

    def _settle(
        self, entry: tuple[_Batch, int], data: bytes, status: str | None, reply: str
    ) -> None:
        batch, i = entry
        if status is None and data[:9] == b'{"stream"' and b'"error"' not in data:
            batch.outcomes[i] = OK
            if b'"duplicate"' in data:
                self.stats["duplicates"] += 1
        else:
            ack = wire.parse_ack(data, status, reply)
            if ack.ok:
                batch.outcomes[i] = OK
                self.stats["duplicates"] += ack.duplicate
            else:
                self.stats["refused"] += 1
                batch.outcomes[i] = Outcome.failed(ack.error or "refused", retryable=ack.retryable)
                if ack.no_responders:
                    batch.unheard.append(i)
        _count_down(batch)

    def _settle_raw(self, reply: str, data: bytes) -> bool:
        entry = self._pending.pop(reply, None)
        if entry is None:
            return False
        self._settle(entry, data, None, reply)
        return True

    async def _on_disconnected(self) -> None:
        self._fail_in_flight()

    def _fail_in_flight(self) -> None:
        for batch in self._in_flight:
            if not batch.done.done():
                batch.done.set_exception(_Disconnected())


def _too_big(total: int, max_payload: int) -> Outcome:
    return Outcome.failed(
        f"event is {total} bytes with headers, over the NATS server's max_payload of "
        f"{max_payload} bytes",
        retryable=False,
    )


def _count_down(batch: _Batch) -> None:
    batch.remaining -= 1
    if batch.remaining <= 0 and not batch.done.done():
        batch.done.set_result(None)


def _finish(
    batch: _Batch, stats: dict[str, int] | None = None, timeout: float = 0.0
) -> list[Outcome]:
    outcomes = batch.outcomes
    missing = 0
    for i, outcome in enumerate(outcomes):
        if outcome is None:
            missing += 1
            outcomes[i] = Outcome.failed(f"no JetStream ack within {timeout}s", retryable=True)
    if stats is not None:
        stats["timeouts"] += missing
        stats["published"] += sum(1 for o in outcomes if o is not None and o.ok)
    return outcomes  # type: ignore[return-value]  # every slot is filled above


def _subject_fn(subject: str | Callable[[Event], str], prefix: str) -> Callable[[Event], str]:
    if isinstance(subject, str):
        return wire.template_subject(subject, prefix)
    if not callable(subject):
        raise ConfigError(f"subject must be a template string or a callable, got {subject!r}")

    def checked(event: Event) -> str:
        return wire.check_subject(subject(event))

    return checked
