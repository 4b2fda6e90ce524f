"""Redis idempotency store: one hash per record, each step one atomic Lua script.

The in-flight record's TTL *is* the lease: a crashed worker's record vanishes after
``lease_ttl``. Completing re-arms the TTL to ``record_ttl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from tether.core.errors import ConfigError, StoreError
from tether.http.idempotency.records import Begin, Outcome, StoredResponse, new_token
from tether.http.redis_pipeline import Pipeliner

_BEGIN = """
local r = redis.call('HMGET', KEYS[1], 'fp', 'state', 'status', 'headers', 'body')
if not r[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'in_flight', 'token', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'acquired'}
end
if r[1] ~= ARGV[1] then return {'mismatch'} end
if r[2] == 'in_flight' then return {'in_flight', redis.call('PTTL', KEYS[1])} end
return {'completed', r[3], r[4], r[5]}
"""

_COMPLETE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'completed', 'status', ARGV[2], 'headers', ARGV[3],
           'body', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1]
   and redis.call('HGET', KEYS[1], 'state') == 'in_flight' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_ERRORS = (RedisError, OSError)


class RedisIdempotencyStore:
    """``batch=True`` shares round trips between concurrent requests (``redis_pipeline``)."""

    def __init__(self, client: Redis, prefix: str = "tether:idem:", *, batch: bool = True) -> None:
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ConfigError("use a Redis client with decode_responses=False (bodies are bytes)")
        self._prefix = prefix
        self._begin = client.register_script(_BEGIN)
        self._complete = client.register_script(_COMPLETE)
        self._release = client.register_script(_RELEASE)
        self._pipeliner = Pipeliner(client) if batch else None

    async def _call(self, script: AsyncScript, key: str, args: Sequence[str | int | bytes]) -> Any:
        try:
            if self._pipeliner is not None:
                return await self._pipeliner.call(script, self._prefix + key, args)
            return await script(keys=[self._prefix + key], args=args)
        except _ERRORS as exc:
            raise StoreError(f"redis idempotency store: {exc}") from exc

    async def begin(
        self, key: str, fingerprint: str, tenant: str, lease_ttl: float, record_ttl: float
    ) -> Begin:
        token = new_token()
        args: list[str | int | bytes] = [fingerprint, token, _ms(lease_ttl)]
        reply = await self._call(self._begin, key, args)
        outcome = Outcome(reply[0].decode())
        if outcome is Outcome.ACQUIRED:
            return Begin(outcome, token=token)
        if outcome is Outcome.IN_FLIGHT:
            return Begin(outcome, retry_after=max(int(reply[1]), 0) / 1000)
        if outcome is Outcome.MISMATCH:
            return Begin(outcome)
        headers = StoredResponse.headers_from_json(reply[2])
        return Begin(outcome, response=StoredResponse(int(reply[1]), headers, reply[3]))

    async def complete(
        self, key: str, token: str, response: StoredResponse, record_ttl: float
    ) -> bool:
        args: list[str | int | bytes] = [
            token,
            response.status,
            response.headers_json(),
            response.body,
            _ms(record_ttl),
        ]
        return bool(await self._call(self._complete, key, args))

    async def release(self, key: str, token: str) -> None:
        await self._call(self._release, key, [token])


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
