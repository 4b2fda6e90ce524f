"""Redis Streams consumer: a consumer group on a stream Tether's Redis Streams sink writes.

* **Reading**: one consumer group per consumer (``billing``), created with ``MKSTREAM`` from
  the stream's first entry (``start="0"``, the default) or from new entries only
  (``start="$"``); each source has its own consumer name in the group
  (``<host>-<pid>-<random>``). ``XREADGROUP ... BLOCK`` waits for new entries.
* **Delivery count**: the pending entry list's ``times_delivered``, read with ``XPENDING``'s
  extended form right after a claim (``XREADGROUP`` of a new entry is delivery 1).
* **Retry later**: the entry stays pending; its due time (the server's clock) goes into a
  sorted set ``{<stream>}:retry:<group>``. ``receive`` first takes the due ones back with
  ``XCLAIM`` (min-idle 0, which bumps the delivery count).
* **Dead consumers**: entries pending longer than ``claim_idle`` seconds are taken over with
  ``XAUTOCLAIM ... JUSTID`` (no count bump), then the ones not waiting for a later retry are
  claimed properly. Entries trimmed from the stream meanwhile are acked and forgotten.
* **Dead-letter**: ``XADD`` to ``<stream>:dlq`` (``dead_letter_stream``), trimmed to about
  ``dead_letter_maxlen`` entries, with the entry's own fields and the failure fields of
  :mod:`tether.consume.deadletter`, then ``XACK``, in one Lua script. A replay adds the original
  fields back to the origin stream and deletes the dead letter, also in one script.
* Connection refused or lost, no answer within ``timeout``, or a server that cannot serve now
  (``LOADING``, ``BUSY``, ``MASTERDOWN``, ...) -> :class:`BrokerUnavailableError`; the client
  reconnects on the next call. A wrong password or missing ACL permission, and a stream key
  holding something else -> :class:`ConfigError`.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from tether.consume import _redis_scripts as scripts
from tether.consume import deadletter
from tether.consume.port import DeadLetter, Delivery, Failure
from tether.core.errors import BrokerUnavailableError, ConfigError
from tether.core.redact import mask_url

log = logging.getLogger("tether.consume.redis")

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DATA_FIELD = "data"
MAX_KEY_BYTES = 1024
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_PER_SCRIPT = 1000
"""Entries one script call claims at most: Lua's ``unpack`` takes about 8000 values."""
_UNAVAILABLE = ("LOADING", "READONLY", "MASTERDOWN", "MISCONF", "CLUSTERDOWN", "BUSY", "OOM")
_MISCONFIGURED = ("NOPERM", "WRONGTYPE", "NOAUTH", "WRONGPASS")

Start = Literal["0", "$"]


@dataclass(frozen=True, slots=True)
class _Entry:
    """The adapter's handle: the entry id and its fields exactly as stored."""

    id: bytes
    fields: tuple[tuple[bytes, bytes], ...]


class _Redis:
    """One client and the error mapping every call goes through."""

    def __init__(self, client: aioredis.Redis, what: str, timeout: float) -> None:
        self.client = client
        self.what = what
        self.timeout = timeout
        self.scripts: dict[str, AsyncScript] = {}

    def script(self, name: str, text: str) -> AsyncScript:
        if name not in self.scripts:
            self.scripts[name] = self.client.register_script(text)
        return self.scripts[name]

    @contextlib.asynccontextmanager
    async def talking(self, doing: str, extra: float = 0.0) -> AsyncIterator[None]:
        """Map what Redis answers while ``doing`` to Tether's errors; bound it in time."""
        try:
            async with asyncio.timeout(self.timeout + extra):
                yield
        except redis.exceptions.AuthenticationError as exc:
            raise ConfigError(f"{self.what}: Redis refused the credentials: {exc}") from exc
        except TimeoutError as exc:  # before OSError, its base class: asyncio.timeout's deadline
            raise BrokerUnavailableError(
                f"{self.what}: Redis did not answer within {self.timeout + extra:.1f}s while "
                f"{doing}"
            ) from exc
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise BrokerUnavailableError(
                f"{self.what}: cannot reach Redis while {doing}: {exc}"
            ) from exc
        except redis.exceptions.ResponseError as exc:
            code = error_code(exc)
            if code in _UNAVAILABLE:
                raise BrokerUnavailableError(
                    f"{self.what}: Redis cannot serve now ({exc}) while {doing}"
                ) from exc
            if code in _MISCONFIGURED or isinstance(exc, redis.exceptions.NoPermissionError):
                raise ConfigError(f"{self.what}: Redis refused {doing}: {exc}") from exc
            raise


def _client(url: str, timeout: float) -> aioredis.Redis:
    try:
        # No retries inside redis-py: an outage is reported at once (the runner pauses and
        # calls again), and an XREADGROUP is never sent twice for one receive.
        return aioredis.Redis.from_url(
            url,
            socket_timeout=None,
            socket_connect_timeout=min(2.0, timeout),
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        raise ConfigError(f"Redis URL {mask_url(url)!r} is invalid: {exc}") from None


class RedisStreamsSource:
    """A consumer group on one stream. Build with :meth:`connect`."""

    def __init__(
        self,
        redis: _Redis,
        *,
        stream: str,
        group: str,
        name: str,
        consumer_name: str,
        start: Start,
        claim_idle: float,
        dead_letter_stream: str,
        dead_letter_maxlen: int,
        owns_client: bool,
    ) -> None:
        self.name = name
        self.stream = stream
        self.group = group
        self.consumer_name = consumer_name
        self.start = start
        self.claim_idle = claim_idle
        self.dead_letter_stream = dead_letter_stream
        self.dead_letter_maxlen = dead_letter_maxlen
        self.retry_key = retry_key(stream, group)
        self._redis = redis
        self._owns = owns_client
        self._cursor = "0-0"
        self._next_rescue = 0.0
        # Dead consumers are looked for every half claim_idle: sooner finds nothing idle enough.
        self._rescue_every = min(max(claim_idle / 2, 0.05), 30.0)
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        stream: str,
        group: str,
        name: str | None = None,
        consumer_name: str | None = None,
        start: Start = "0",
        claim_idle: float = 60.0,
        dead_letter_stream: str | None = None,
        dead_letter_maxlen: int = 100_000,
        timeout: float = 5.0,
    ) -> RedisStreamsSource:
        """Open a client for ``url`` and create the group on ``stream`` (and the stream) if
        missing. ``stream`` is a key the sink writes (``tether:orders`` for the template
        ``tether:{topic}``); ``group`` names the consumer (``name`` defaults to it)."""
        check_key(stream, "stream")
        check_name(group, "consumer group")
        if consumer_name is not None:
            check_name(consumer_name, "consumer name")
        if start not in ("0", "$"):
            raise ConfigError(
                f"start must be '0' (whole stream) or '$' (new entries), got {start!r}"
            )
        if not 0.01 <= claim_idle <= 86_400:
            raise ConfigError(f"claim_idle must be 0.01 to 86400 seconds, got {claim_idle!r}")
        if isinstance(dead_letter_maxlen, bool) or dead_letter_maxlen < 1:
            raise ConfigError(f"dead_letter_maxlen must be at least 1, got {dead_letter_maxlen!r}")
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive seconds, got {timeout!r}")
        dlq = _dead_letter_stream(stream, dead_letter_stream)
        if dlq == stream:
            raise ConfigError(f"the dead-letter stream must differ from the stream {stream!r}")
        client = _client(url, timeout)
        source = cls(
            _Redis(client, f"consumer {name or group!r}", timeout),
            stream=stream,
            group=group,
            name=name or group,
            consumer_name=consumer_name or _consumer_name(),
            start=start,
            claim_idle=claim_idle,
            dead_letter_stream=dlq,
            dead_letter_maxlen=dead_letter_maxlen,
            owns_client=True,
        )
        try:
            await source._ensure_group()
            async with source._redis.talking(f"checking {dlq!r}"):
                kind = _text(await client.type(dlq))
            if kind not in ("none", "stream"):
                raise ConfigError(f"dead-letter key {dlq!r} holds a {kind}, not a stream")
        except BaseException:
            await client.aclose()
            raise
        return source

    # -- the port ------------------------------------------------------------------------------

    async def receive(self, max_messages: int, wait: float) -> Sequence[Delivery]:
        self._check_open()
        if max_messages < 1:
            raise ConfigError(f"max_messages must be at least 1, got {max_messages!r}")
        out: list[Delivery] = []
        try:
            next_due = await self._take_due(max_messages, out)
            if len(out) < max_messages and time.monotonic() >= self._next_rescue:
                await self._rescue(max_messages - len(out), out)
            if len(out) < max_messages:
                # Wait only while nothing is in hand, and no longer than the next due retry.
                block = 0.0 if out else wait if next_due is None else min(wait, next_due)
                await self._read_new(max_messages - len(out), block, out)
        except redis.exceptions.ResponseError as exc:
            if error_code(exc) != "NOGROUP":
                raise
            # The stream or the group is gone (deleted, or a restart without persistence).
            log.warning(
                "%s: group %r is gone from %r; creating it again",
                self.name,
                self.group,
                self.stream,
            )
            await self._ensure_group()
        return out

    async def ack(self, delivery: Delivery) -> None:
        self._check_open()
        entry = _handle(delivery)
        # XACK alone: a due retry is out of the retry set before it is handed out, and a stale
        # one (scheduled by a consumer that lost the entry meanwhile) finds nothing to claim.
        async with self._redis.talking(f"acking {entry.id.decode()}"):
            await self._redis.client.xack(self.stream, self.group, entry.id)

    async def retry_later(self, delivery: Delivery, delay: float) -> None:
        self._check_open()
        entry = _handle(delivery)
        script = self._redis.script("retry", scripts.RETRY)
        async with self._redis.talking(f"scheduling the retry of {entry.id.decode()}"):
            await script(keys=[self.retry_key], args=[entry.id, max(0, round(delay * 1000))])

    async def dead_letter(self, delivery: Delivery, failure: Failure) -> None:
        self._check_open()
        entry = _handle(delivery)
        record = deadletter.failure_headers(failure, delivery.origin)
        names = {n.encode() for n in deadletter.NAMES}
        fields: list[bytes | str] = []
        for key, value in entry.fields:
            if key not in names:  # a replayed entry dead-lettered again: one record, the new one
                fields += (key, value)
        for key_text, value_text in record.items():
            fields += (key_text, value_text)
        script = self._redis.script("dead_letter", scripts.DEAD_LETTER)
        try:
            async with self._redis.talking(f"dead-lettering {entry.id.decode()}"):
                await script(
                    keys=[self.stream, self.retry_key, self.dead_letter_stream],
                    args=[self.group, entry.id, self.dead_letter_maxlen, *fields],
                )
        except redis.exceptions.ResponseError as exc:
            if error_code(exc) != "NOGROUP":
                raise
            # The group went away with its pending entries: nothing is left to settle, and
            # the next receive creates the group again.
            log.warning(
                "%s: group %r is gone; entry %s not dead-lettered", self.name, self.group, entry.id
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            script = self._redis.script("forget", scripts.FORGET_CONSUMER)
            async with asyncio.timeout(self._redis.timeout):
                await script(keys=[self.stream], args=[self.group, self.consumer_name])
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            log.debug(
                "%s: consumer %s not removed from the group: %s", self.name, self.consumer_name, exc
            )
        finally:
            if self._owns:
                await self._redis.client.aclose()

    # -- internals ---------------------------------------------------------------------------

    async def _ensure_group(self) -> None:
        async with self._redis.talking(f"creating group {self.group!r} on {self.stream!r}"):
            try:
                await self._redis.client.xgroup_create(
                    self.stream, self.group, id=self.start, mkstream=True
                )
            except redis.exceptions.ResponseError as exc:
                if error_code(exc) != "BUSYGROUP":  # it exists: nothing to do
                    raise

    async def _take_due(self, room: int, out: list[Delivery]) -> float | None:
        """Claim due retries into ``out``; seconds until the next one (None: none waits)."""
        script = self._redis.script("take_due", scripts.TAKE_DUE)
        async with self._redis.talking("taking due retries"):
            reply: Any = await script(
                keys=[self.stream, self.retry_key],
                args=[self.group, self.consumer_name, min(room, _PER_SCRIPT)],
            )
        wait_ms, claimed = reply
        out.extend(self._delivery(i, f, n) for i, f, n in claimed)
        return None if int(wait_ms) < 0 else int(wait_ms) / 1000

    async def _rescue(self, room: int, out: list[Delivery]) -> None:
        script = self._redis.script("rescue", scripts.RESCUE)
        async with self._redis.talking("claiming entries of idle consumers"):
            reply: Any = await script(
                keys=[self.stream, self.retry_key],
                args=[
                    self.group,
                    self.consumer_name,
                    round(self.claim_idle * 1000),
                    self._cursor,
                    min(room, _PER_SCRIPT),
                ],
            )
        cursor, claimed = reply
        self._cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        # A pass over the whole list ends at 0-0; until then the next receive goes on with it.
        if self._cursor == "0-0":
            self._next_rescue = time.monotonic() + self._rescue_every
        out.extend(self._delivery(i, f, n) for i, f, n in claimed)

    async def _read_new(self, room: int, wait: float, out: list[Delivery]) -> None:
        # BLOCK 0 would wait forever: no BLOCK at all is the "do not wait" of XREADGROUP.
        block = round(wait * 1000) if wait >= 0.001 else None
        async with self._redis.talking("reading new entries", extra=wait):
            reply: Any = await self._redis.client.xreadgroup(
                self.group, self.consumer_name, {self.stream: ">"}, count=room, block=block
            )
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                out.append(self._delivery(entry_id, fields, 1))

    def _delivery(self, entry_id: bytes, fields: Any, deliveries: Any) -> Delivery:
        pairs = _pairs(fields)
        attributes = {_text(k): _text(v) for k, v in pairs if k != b"data"}
        data = next((v for k, v in pairs if k == b"data"), b"")
        return Delivery(
            attributes=attributes,
            data=data,
            deliveries=max(1, int(deliveries)),
            origin=self.stream,
            headers=dict(attributes),
            handle=_Entry(entry_id, pairs),
        )

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError(f"consumer {self.name!r} is closed; connect a new source")


class RedisDeadLetterBox:
    """The dead-letter stream of a consumer: list and replay. Build with :meth:`connect`."""

    def __init__(
        self, redis: _Redis, *, stream: str, dead_letter_stream: str, owns_client: bool
    ) -> None:
        self.stream = stream
        self.dead_letter_stream = dead_letter_stream
        self._redis = redis
        self._owns = owns_client
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        stream: str,
        dead_letter_stream: str | None = None,
        timeout: float = 5.0,
    ) -> RedisDeadLetterBox:
        check_key(stream, "stream")
        dlq = _dead_letter_stream(stream, dead_letter_stream)
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive seconds, got {timeout!r}")
        client = _client(url, timeout)
        box = cls(
            _Redis(client, f"dead letters {dlq!r}", timeout),
            stream=stream,
            dead_letter_stream=dlq,
            owns_client=True,
        )
        try:
            async with box._redis.talking(f"checking {dlq!r}"):
                await client.ping()
        except BaseException:
            await client.aclose()
            raise
        return box

    async def list(self, limit: int = 100) -> Sequence[DeadLetter]:
        if limit < 1:
            raise ConfigError(f"limit must be at least 1, got {limit!r}")
        async with self._redis.talking(f"listing {self.dead_letter_stream!r}"):
            entries: Any = await self._redis.client.xrange(self.dead_letter_stream, count=limit)
        letters = []
        for entry_id, fields in entries:
            pairs = _pairs(fields)
            every = {_text(k): _text(v) for k, v in pairs if k != b"data"}
            original = deadletter.original_headers(every)
            letters.append(deadletter.read_dead_letter(_text(entry_id), every, original, original))
        return letters

    async def replay(self, ids: Sequence[str] | None = None) -> int:
        if ids is not None:
            for dlq_id in ids:
                if not isinstance(dlq_id, str) or not _ENTRY_ID.match(dlq_id):
                    raise ConfigError(
                        f"dead letter id {dlq_id!r} is not a stream entry id like 1700000000000-0"
                    )
            chosen = list(dict.fromkeys(ids))
        else:
            chosen = await self._all_ids()
        replayed = 0
        for dlq_id in chosen:
            replayed += await self._replay_one(dlq_id)
        return replayed

    async def close(self) -> None:
        if self._owns and not self._closed:
            self._closed = True
            await self._redis.client.aclose()

    async def _all_ids(self) -> builtins.list[str]:
        """Every id present now: letters dead-lettered while replaying wait for the next call."""
        ids: builtins.list[str] = []
        lower = "-"
        async with self._redis.talking(f"listing {self.dead_letter_stream!r}"):
            while True:
                page: Any = await self._redis.client.xrange(
                    self.dead_letter_stream, min=lower, count=500
                )
                ids += [_text(i) for i, _ in page]
                if len(page) < 500:
                    return ids
                lower = "(" + _text(page[-1][0])

    async def _replay_one(self, dlq_id: str) -> int:
        async with self._redis.talking(f"replaying {dlq_id}"):
            found: Any = await self._redis.client.xrange(self.dead_letter_stream, dlq_id, dlq_id)
            if not found:
                return 0
            fields = {_text(k): _text(v) for k, v in _pairs(found[0][1])}
            origin = fields.get(deadletter.ORIGIN) or self.stream
            script = self._redis.script("replay", scripts.REPLAY)
            return int(
                await script(
                    keys=[self.dead_letter_stream, origin], args=[dlq_id, *deadletter.NAMES]
                )
            )


async def dead_letter_box(url: str, source: str, consumer: str) -> RedisDeadLetterBox:
    """The dead letters of consumer group ``consumer`` on stream ``source``
    (``tether consume dlq ... --broker redis``)."""
    check_name(consumer, "consumer group")
    return await RedisDeadLetterBox.connect(url, stream=source)


def retry_key(stream: str, group: str) -> str:
    """``{<stream>}:retry:<group>``: the group's due times, in the stream's cluster slot."""
    return f"{{{stream}}}:retry:{group}"


def _dead_letter_stream(stream: str, given: str | None) -> str:
    """The dead-letter stream's key: ``given``, or ``<stream>:dlq``; checked."""
    dlq = given if given is not None else f"{stream}:dlq"
    check_key(dlq, "dead-letter stream")
    return dlq


def check_key(key: str, what: str) -> None:
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{what} key must be a non-empty string, got {key!r}")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise ConfigError(f"{what} key {key[:60]!r}... is over {MAX_KEY_BYTES} bytes")
    if not key.isprintable() or any(c.isspace() for c in key):
        raise ConfigError(f"{what} key {key!r} has spaces or control characters")


def check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{what} {name!r} must be 1 to 128 letters, digits or . _ - : (as inbox names)"
        )


def error_code(error: Exception) -> str:
    """The Redis error code (``NOGROUP``, ``BUSY``...): redis-py keeps the ones it knows in
    ``status_code`` and strips them from the message."""
    code = getattr(error, "status_code", None)
    return str(code) if code else str(error).split(" ", 1)[0]


def _consumer_name() -> str:
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:100] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


def _handle(delivery: Delivery) -> _Entry:
    if not isinstance(delivery.handle, _Entry):
        raise TypeError(
            f"this delivery did not come from a Redis Streams source: its handle is "
            f"{type(delivery.handle).__name__}"
        )
    return delivery.handle


def _pairs(fields: Any) -> tuple[tuple[bytes, bytes], ...]:
    """Fields as (name, value) pairs: redis-py answers a dict, a script a flat list."""
    if isinstance(fields, Mapping):
        items = list(fields.items())
    else:
        flat = list(fields or [])
        items = list(zip(flat[0::2], flat[1::2], strict=False))
    return tuple((_bytes(k), _bytes(v)) for k, v in items)


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _text(value: Any) -> str:
    # A field that is not UTF-8 is still handed on (the runner dead-letters what it cannot use).
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
