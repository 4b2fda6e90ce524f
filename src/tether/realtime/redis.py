"""The Redis backplane: one stream and one small hash per channel, one pub/sub bus.

Publishing is one Lua script, atomic on the server: take the next offset from the channel's
hash (creating the epoch when the hash is gone, and dropping any stream left from an older
epoch), ``XADD`` with the offset as the entry id and ``MAXLEN`` as the history bound, refresh
both keys' TTL, and ``PUBLISH`` the publication on the bus. Every gateway listens to the
bus and keeps what its clients subscribe to. Recovery is a second script reading the hash and
the stream together, so the answer is one consistent snapshot. Keys of a channel share a hash
tag, so the scripts also run on Redis Cluster.

The bus is one pub/sub channel: every gateway sees every publication and drops those none of
its clients want. That is simple and right up to tens of thousands of publications a second;
past that, shard the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from tether.realtime.backplane import (
    BackplaneUnavailable,
    Delivery,
    OnDelivery,
    OnResync,
    Position,
    Recovery,
    decide,
)

_log = logging.getLogger("tether.realtime.redis")

# KEYS: hash, stream. ARGV: body, maxlen, ttl, epoch candidate, bus, channel key.
_PUBLISH = """
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[4]
  redis.call('del', KEYS[2])
  redis.call('hset', KEYS[1], 'e', epoch)
end
local offset = redis.call('hincrby', KEYS[1], 's', 1)
redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[2], offset .. '-0', 'p', ARGV[1])
redis.call('expire', KEYS[1], ARGV[3])
redis.call('expire', KEYS[2], ARGV[3])
redis.call('publish', ARGV[5], ARGV[6] .. '\\n' .. offset .. '\\n' .. epoch .. '\\n' .. ARGV[1])
return {offset, epoch}
"""

# KEYS: hash, stream. ARGV: epoch candidate, ttl, from offset (or -1 for none), max entries.
_READ = """
if redis.call('hsetnx', KEYS[1], 'e', ARGV[1]) == 1 then
  redis.call('del', KEYS[2])
  redis.call('expire', KEYS[1], ARGV[2])
end
local epoch = redis.call('hget', KEYS[1], 'e')
local top = tonumber(redis.call('hget', KEYS[1], 's') or '0')
local entries = {}
local from = tonumber(ARGV[3])
if from >= 0 and from <= top then
  entries = redis.call('xrange', KEYS[2], from .. '-0', '+', 'COUNT', ARGV[4])
end
return {epoch, top, entries}
"""


class RedisBackplane:
    """``history_size`` publications per channel, kept ``history_ttl`` seconds after the last."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tether:rt",
        history_size: int = 1000,
        history_ttl: int = 86_400,
        reconnect_delay: float = 0.2,
    ) -> None:
        import redis.asyncio as aioredis

        if history_size < 1 or history_ttl < 1:
            raise ValueError("history_size and history_ttl must be >= 1")
        self.prefix = prefix
        self.bus = f"{prefix}:bus"
        self.history_size = history_size
        self.history_ttl = history_ttl
        self.reconnect_delay = reconnect_delay
        self.redis: Any = aioredis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=5
        )
        self._publish = self.redis.register_script(_PUBLISH)
        self._read = self.redis.register_script(_READ)
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.connected = False

    def _keys(self, key: str) -> list[str]:
        return [f"{self.prefix}:{{{key}}}:m", f"{self.prefix}:{{{key}}}:h"]

    async def start(self, on_delivery: OnDelivery, on_resync: OnResync) -> None:
        self._task = asyncio.create_task(self._listen(on_delivery, on_resync), name="tether-rt-bus")
        with contextlib.suppress(TimeoutError):  # a gateway starts even while Redis is down
            async with asyncio.timeout(3):
                await self._subscribed.wait()

    async def publish(self, key: str, body: bytes) -> Position:
        return (await self.publish_many([(key, body)]))[0]

    async def publish_many(self, items: Sequence[tuple[str, bytes]]) -> list[Position]:
        from redis.exceptions import RedisError

        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, body in items:
                    await self._publish(
                        keys=self._keys(key),
                        args=[body, self.history_size, self.history_ttl, _epoch(), self.bus, key],
                        client=pipe,
                    )
                results = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise BackplaneUnavailable(f"Redis: {type(exc).__name__}: {exc}") from None
        return [Position(_text(epoch), int(offset)) for offset, epoch in results]

    async def position(self, key: str) -> Position:
        epoch, top, _ = await self._read_channel(key, -1)
        return Position(epoch, top)

    async def recover(self, key: str, since: Position) -> Recovery:
        epoch, top, raw = await self._read_channel(key, since.offset + 1)
        entries = [(int(_text(eid).split("-")[0]), _body(fields)) for eid, fields in raw]
        return decide(Position(epoch, top), since, entries)

    async def _read_channel(self, key: str, start: int) -> tuple[str, int, list[Any]]:
        from redis.exceptions import RedisError

        try:
            epoch, top, raw = await self._read(
                keys=self._keys(key), args=[_epoch(), self.history_ttl, start, self.history_size]
            )
        except (RedisError, OSError) as exc:
            raise BackplaneUnavailable(f"Redis: {type(exc).__name__}: {exc}") from None
        return _text(epoch), int(top), list(raw)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.redis.aclose()

    async def _listen(self, on_delivery: OnDelivery, on_resync: OnResync) -> None:
        from redis.exceptions import RedisError

        first = True
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.bus)
                self.connected = True
                self._subscribed.set()
                if not first:
                    _log.warning("realtime bus back; subscribers re-sync their channels")
                    on_resync()
                first = False
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        _deliver(message["data"], on_delivery)
            except (RedisError, OSError) as exc:
                if self.connected:
                    _log.warning("realtime bus lost (%s); delivering locally until it is back", exc)
                self.connected = False
                first = False
                await asyncio.sleep(self.reconnect_delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


def _deliver(data: bytes, on_delivery: OnDelivery) -> None:
    try:
        key, offset, epoch, body = data.split(b"\n", 3)
        delivery = Delivery(key.decode(), epoch.decode(), int(offset), body)
    except ValueError:
        _log.warning("dropping a malformed message on the realtime bus")
        return
    try:
        on_delivery(delivery)
    except Exception:  # one bad subscriber must not stop the bus
        _log.exception("realtime delivery failed")


def _epoch() -> str:
    return uuid.uuid4().hex[:12]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _body(fields: list[Any]) -> bytes:
    # XRANGE through EVAL gives [field, value, ...]
    values = dict(zip(fields[::2], fields[1::2], strict=True))
    value = values.get(b"p", values.get("p", b"{}"))
    return value if isinstance(value, bytes) else str(value).encode()
