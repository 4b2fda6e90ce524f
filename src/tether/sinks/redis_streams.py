"""Redis Streams sink (redis-py): XADD, the CloudEvents envelope as the entry's fields.

* Each event is one entry on the stream named by a template (``"tether:{topic}"`` by default).
  Its fields are the CloudEvents attributes (``id``, ``type``, ``source``, ``time``, ...) and
  ``data``, the payload's JSON bytes untouched.
* **No second entry for a re-published event.** Each XADD runs in a small Lua script together
  with a de-duplication key ``{<stream>}:dedup:<event id>`` (same cluster slot as the stream)
  that expires after ``dedup_window`` seconds: the script adds the entry and sets the key, or,
  when the key is there, adds nothing and reports the event as already there. Scripts run
  atomically, so no reader ever sees the same event id twice within the window. An id-derived
  entry id would not do: entry ids must grow, and the relay publishes out of id order.
* **Trimming**: ``maxlen`` (keep about that many entries) or ``minid_age`` (drop entries older
  than that many seconds), approximate (``~``, cheap) unless ``exact_trim``.
* A batch is one pipeline, one round trip: one EVALSHA per stream and up to :data:`CHUNK`
  events, encoded by the sink in one pass and written on a pooled connection (redis-py's
  pipeline encodes argument by argument, about 1 µs each, and ~30 per event).
* Per event: added or duplicate → OK; ``WRONGTYPE`` (the key is not a stream) → failed, not
  retryable; ``OOM``, ``NOPERM`` and other refusals → failed, retryable.
* Connection refused or lost, timeout, or a server that cannot take writes now (``LOADING``,
  ``READONLY`` replica, ``MASTERDOWN``, ``MISCONF``, ``CLUSTERDOWN``, ``BUSY``) →
  :class:`SinkUnavailableError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from tether.core.envelope import Event
from tether.core.errors import ConfigError, SinkError, SinkUnavailableError
from tether.sinks import _keys
from tether.sinks import _redis_wire as wire
from tether.sinks.base import OK, Outcome, SinkFeatures

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DATA_FIELD = wire.DATA_FIELD
_MAX_KEY_BYTES = 1024

XADD_ONCE = wire.XADD_ONCE
CHUNK = wire.CHUNK

# Whole-server conditions: the broker cannot take writes now, whichever event it is.
_UNAVAILABLE = ("LOADING", "READONLY", "MASTERDOWN", "MISCONF", "CLUSTERDOWN", "BUSY")
_PERMANENT = ("WRONGTYPE",)


class RedisStreamsSink:
    """Append events to Redis streams. Build with :meth:`connect` (owns its client) or pass a
    ``redis.asyncio.Redis`` you own."""

    features = SinkFeatures(
        dedups_by_id=True, durable=True, can_be_unavailable=True, fails_per_event=True
    )

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        name: str = "redis",
        stream: str = "tether:{topic}",
        maxlen: int | None = None,
        minid_age: float | None = None,
        exact_trim: bool = False,
        dedup_window: float = 120.0,
        timeout: float = 5.0,
        owns_client: bool = False,
    ) -> None:
        if maxlen is not None and minid_age is not None:
            raise ConfigError("give maxlen or minid_age, not both: XADD trims by one of them")
        if maxlen is not None and maxlen < 1:
            raise ConfigError(f"maxlen must be at least 1, got {maxlen!r}")
        if minid_age is not None and minid_age <= 0:
            raise ConfigError(f"minid_age must be positive seconds, got {minid_age!r}")
        if dedup_window < 0.001:
            raise ConfigError(f"dedup_window must be at least 0.001 s, got {dedup_window!r}")
        if timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout!r}")
        self.name = name
        self.maxlen = maxlen
        self.minid_age = minid_age
        self.dedup_window = dedup_window
        self.timeout = timeout
        self._stream = _keys.key_template(stream, what="stream key", max_bytes=_MAX_KEY_BYTES)
        self._trim_op = "=" if exact_trim else "~"
        self._window_ms = str(max(1, round(dedup_window * 1000)))
        self._client = client
        self._owns = owns_client
        self._sha: str | None = None
        self._closed = False
        self.stats = {"added": 0, "duplicates": 0, "refused": 0}

    @classmethod
    async def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        name: str = "redis",
        stream: str = "tether:{topic}",
        maxlen: int | None = None,
        minid_age: float | None = None,
        exact_trim: bool = False,
        dedup_window: float = 120.0,
        timeout: float = 5.0,
    ) -> RedisStreamsSink:
        """A client of its own for ``url``; checks that the server answers and loads the script.

        ``timeout`` bounds each ``publish`` as a whole rather than each reply read: a deadline
        per reply costs a timer per event."""
        try:
            client = aioredis.Redis.from_url(
                url, socket_timeout=None, socket_connect_timeout=min(2.0, timeout)
            )
        except ValueError as exc:
            raise ConfigError(f"Redis URL {url!r} is invalid: {exc}") from None
        try:
            sink = cls(
                client,
                name=name,
                stream=stream,
                maxlen=maxlen,
                minid_age=minid_age,
                exact_trim=exact_trim,
                dedup_window=dedup_window,
                timeout=timeout,
                owns_client=True,
            )
            await sink.start()
            return sink
        except BaseException:
            await client.aclose()
            raise

    async def start(self) -> None:
        """Load the script (``publish`` does it on first use if needed)."""
        try:
            async with asyncio.timeout(self.timeout):
                self._sha = str(await self._client.script_load(XADD_ONCE))
        except redis.exceptions.AuthenticationError as exc:
            raise ConfigError(f"Redis refused the credentials: {exc}") from exc
        except TimeoutError as exc:  # before OSError, its base class: a hung server, not a refusal
            raise SinkUnavailableError(
                f"sink {self.name!r}: Redis did not answer within {self.timeout}s"
            ) from exc
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise SinkUnavailableError(f"sink {self.name!r}: cannot reach Redis: {exc}") from exc

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; create a new one to publish")
        if self._sha is None:
            await self.start()
        outcomes: list[Outcome | None] = [None] * len(events)
        by_stream: dict[str, list[int]] = {}
        for i, event in enumerate(events):
            try:
                by_stream.setdefault(self._stream(event), []).append(i)
            except _keys.KeyTemplateError as exc:
                outcomes[i] = Outcome.failed(str(exc), retryable=False)
        calls = [
            self._call(stream, part, events)
            for stream, indices in by_stream.items()
            for part in _chunks(indices)
        ]
        if calls:
            await self._run(calls, outcomes)
        return [o or OK for o in outcomes]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns:
            await self._client.aclose()

    # -- internals ---------------------------------------------------------------------------

    def _trim(self) -> tuple[str, str, str]:
        if self.maxlen is not None:
            return ("MAXLEN", self._trim_op, str(self.maxlen))
        if self.minid_age is not None:
            oldest_ms = int(time.time() * 1000 - self.minid_age * 1000)
            return ("MINID", self._trim_op, str(max(0, oldest_ms)))
        return ("", "", "")

    def _call(self, stream: str, indices: list[int], events: Sequence[Event]) -> _Call:
        assert self._sha is not None
        batch = [events[i] for i in indices]
        return _Call(indices, wire.call(self._sha, stream, batch, self._window_ms, self._trim()))

    async def _run(self, calls: list[_Call], outcomes: list[Outcome | None]) -> None:
        results = await self._pipeline(calls)
        if any(_no_script(r) for r in results):
            # The server lost its scripts (restart, SCRIPT FLUSH): load it again, resend once.
            await self.start()
            redo = [c for c, r in zip(calls, results, strict=True) if _no_script(r)]
            again = iter(await self._pipeline(redo))
            results = [next(again) if _no_script(r) else r for r in results]
        for call, result in zip(calls, results, strict=True):
            if isinstance(result, list):
                for i, (status, error) in zip(call.indices, wire.read_status(result), strict=True):
                    outcomes[i] = self._outcome(status, error)
            else:  # the whole call was refused
                for i in call.indices:
                    outcomes[i] = self._refused(result)

    async def _pipeline(self, calls: list[_Call]) -> list[Any]:
        """Send every call in one write, read one reply per call: a pipeline, one round trip."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(calls)
        except TimeoutError as exc:  # before OSError, its base class: a hung server
            raise SinkUnavailableError(
                f"sink {self.name!r}: Redis did not answer {len(calls)} call(s) within "
                f"{self.timeout}s; the batch will be re-published"
            ) from exc
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise SinkUnavailableError(
                f"sink {self.name!r}: lost Redis while publishing ({exc}); the batch will be "
                "re-published (the de-dup keys keep it from adding entries twice)"
            ) from exc

    async def _exchange(self, calls: list[_Call]) -> list[Any]:
        pool = self._client.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_packed_command([c.packed for c in calls], check_health=False)
            replies: list[Any] = []
            for _ in calls:
                try:
                    replies.append(await conn.read_response())
                except redis.exceptions.ResponseError as exc:  # read whole: the stream is intact
                    replies.append(exc)
            return replies
        except BaseException:
            await conn.disconnect(nowait=True)  # replies may be left unread
            raise
        finally:
            await pool.release(conn)

    def _outcome(self, status: str, error: str | None) -> Outcome:
        if status in "+=":
            self.stats["added" if status == "+" else "duplicates"] += 1
            return OK
        return self._refused(redis.exceptions.ResponseError(error or "no error text"))

    def _refused(self, error: object) -> Outcome:
        self.stats["refused"] += 1
        if _unavailable(error):
            assert isinstance(error, Exception)
            raise SinkUnavailableError(
                f"sink {self.name!r}: Redis cannot take writes now: {_describe(error)}"
            ) from error
        if isinstance(error, redis.exceptions.RedisError):
            permanent = error_code(error) in _PERMANENT
            text = f"Redis refused the entry: {_describe(error)}"
            return Outcome.failed(text, retryable=not permanent)
        return Outcome.failed(f"unexpected Redis reply {error!r}")


@dataclass(frozen=True, slots=True)
class _Call:
    indices: list[int]
    packed: bytes


def _chunks(indices: list[int]) -> list[list[int]]:
    return [indices[n : n + CHUNK] for n in range(0, len(indices), CHUNK)]


def read_entry(fields: Mapping[bytes | str, bytes | str]) -> tuple[dict[str, str], bytes]:
    """An entry as a consumer reads it (XRANGE/XREAD): its CloudEvents attributes and data."""
    decoded = {_text(k): v for k, v in fields.items()}
    data = decoded.pop(DATA_FIELD, b"")
    attrs = {k: _text(v) for k, v in decoded.items()}
    return attrs, data if isinstance(data, bytes) else data.encode()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def error_code(error: Exception) -> str:
    """The Redis error code (``WRONGTYPE``, ``OOM``...): redis-py strips the ones it knows from
    the message and keeps them in ``status_code``."""
    code = getattr(error, "status_code", None)
    return str(code) if code else str(error).split(" ", 1)[0]


def _describe(error: Exception) -> str:
    code, text = error_code(error), str(error)
    return text if text.startswith(code) else f"{code} {text}"


def _no_script(result: object) -> bool:
    return isinstance(result, redis.exceptions.ResponseError) and error_code(result) == "NOSCRIPT"


def _unavailable(result: object) -> bool:
    return isinstance(result, redis.exceptions.RedisError) and error_code(result) in _UNAVAILABLE
