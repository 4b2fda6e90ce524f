"""Redis Streams sink (redis-py): XADD, the CloudEvents envelope as the entry's fields.

* Each event is one entry on the stream named by a template (``"tether:{topic}"`` by default).
  Its fields are the CloudEvents attributes (``id``, ``type``, ``source``, ``time``, ...) and
  ``data``, the payload's JSON bytes untouched.
* **No second entry for a re-published event.** Each XADD runs in a small Lua script together
  with a de-duplication key ``{<stream>}:dedup:<event id>`` (same cluster slot as the stream)
  that expires after ``dedup_window`` seconds: the script adds the entry and sets the key, or,
  when the key is there, adds nothing and answers with the entry already added. Scripts run
  atomically, so no reader ever sees the same event id twice within the window. An id-derived
  entry id would not do: entry ids must grow, and the relay publishes out of id order.
* **Trimming**: ``maxlen`` (keep about that many entries) or ``minid_age`` (drop entries older
  than that many seconds), approximate (``~``, cheap) unless ``exact_trim``.
* A batch is one pipeline, one round trip: an EVALSHA per event.
* Per event: added or duplicate → OK; ``WRONGTYPE`` (the key is not a stream) → failed, not
  retryable; ``OOM``, ``NOPERM`` and other refusals → failed, retryable.
* Connection refused or lost, timeout, or a server that cannot take writes now (``LOADING``,
  ``READONLY`` replica, ``MASTERDOWN``, ``MISCONF``) → :class:`SinkUnavailableError`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from tether.core.envelope import Event
from tether.core.errors import ConfigError, SinkError, SinkUnavailableError
from tether.sinks import _keys
from tether.sinks.base import OK, Outcome, SinkFeatures

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DATA_FIELD = "data"
_MAX_KEY_BYTES = 1024

# KEYS[1] stream, KEYS[2] de-dup key; ARGV[1] window in ms, ARGV[2..4] trim strategy, operator
# and threshold ('' when none), ARGV[5..] field/value pairs. Answers {entry id, 1 if duplicate}.
XADD_ONCE = """
local seen = redis.call('GET', KEYS[2])
if seen then return {seen, 1} end
local args = {KEYS[1]}
if ARGV[2] ~= '' then
  args[2] = ARGV[2]; args[3] = ARGV[3]; args[4] = ARGV[4]
end
args[#args + 1] = '*'
for i = 5, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.call('XADD', unpack(args))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return {id, 0}
"""

# Whole-server conditions: the broker cannot take writes now, whichever event it is.
_UNAVAILABLE = ("LOADING", "READONLY", "MASTERDOWN", "MISCONF", "CLUSTERDOWN")
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
        self.name = name
        self.maxlen = maxlen
        self.minid_age = minid_age
        self.dedup_window = dedup_window
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
        """A client of its own for ``url``; checks that the server answers and loads the script."""
        try:
            client = aioredis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=min(2.0, timeout)
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
            self._sha = str(await self._client.script_load(XADD_ONCE))
        except redis.exceptions.AuthenticationError as exc:
            raise ConfigError(f"Redis refused the credentials: {exc}") from exc
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise SinkUnavailableError(f"sink {self.name!r}: cannot reach Redis: {exc}") from exc

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; create a new one to publish")
        if self._sha is None:
            await self.start()
        outcomes: list[Outcome | None] = [None] * len(events)
        calls: list[tuple[int, list[Any]]] = []
        trim = self._trim()
        for i, event in enumerate(events):
            try:
                stream = self._stream(event)
            except _keys.KeyTemplateError as exc:
                outcomes[i] = Outcome.failed(str(exc), retryable=False)
                continue
            keys = (stream, f"{{{stream}}}:dedup:{event.id}")
            calls.append((i, [*keys, self._window_ms, *trim, *entry_fields(event)]))
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

    async def _run(
        self, calls: list[tuple[int, list[Any]]], outcomes: list[Outcome | None]
    ) -> None:
        results = await self._pipeline(calls)
        missing = [call for call, r in zip(calls, results, strict=True) if _no_script(r)]
        if missing:  # the server lost its scripts (restart, SCRIPT FLUSH): load it again, once
            await self.start()
            again = dict(zip((i for i, _ in missing), await self._pipeline(missing), strict=True))
            results = [again.get(i, r) for (i, _), r in zip(calls, results, strict=True)]
        for (i, _), result in zip(calls, results, strict=True):
            outcomes[i] = self._outcome(result)

    async def _pipeline(self, calls: list[tuple[int, list[Any]]]) -> list[Any]:
        assert self._sha is not None
        pipe = self._client.pipeline(transaction=False)
        for _, args in calls:
            pipe.evalsha(self._sha, 2, *args)
        try:
            results = await pipe.execute(raise_on_error=False)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise SinkUnavailableError(
                f"sink {self.name!r}: lost Redis while publishing ({exc}); the batch will be "
                "re-published (the de-dup keys keep it from adding entries twice)"
            ) from exc
        for result in results:
            if _unavailable(result):
                raise SinkUnavailableError(
                    f"sink {self.name!r}: Redis cannot take writes now: {_describe(result)}"
                ) from result
        return list(results)

    def _outcome(self, result: object) -> Outcome:
        if isinstance(result, list) and len(result) == 2:
            if result[1]:
                self.stats["duplicates"] += 1
            else:
                self.stats["added"] += 1
            return OK
        self.stats["refused"] += 1
        if isinstance(result, redis.exceptions.RedisError):
            permanent = error_code(result) in _PERMANENT
            text = f"Redis refused the entry: {_describe(result)}"
            return Outcome.failed(text, retryable=not permanent)
        return Outcome.failed(f"unexpected Redis reply {result!r}")


def entry_fields(event: Event) -> list[str | bytes]:
    """The entry's field/value pairs: every CloudEvents attribute, then ``data``."""
    out: list[str | bytes] = []
    for key, value in event.cloudevent_attributes().items():
        out += (key, value)
    out += (DATA_FIELD, event.data)
    return out


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
