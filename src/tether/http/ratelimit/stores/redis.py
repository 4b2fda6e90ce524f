"""Redis rate-limit store: one EVALSHA per decision, clocked by the Redis server's TIME.

Using the server's clock means every app process agrees on window boundaries and TATs, even
when their own clocks drift. Each key is one Redis key (hash or string), so the scripts are
Redis Cluster safe. redis-py's ``register_script`` sends EVALSHA and reloads on NOSCRIPT.
"""

from __future__ import annotations

import functools
import math

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tether.core.errors import StoreError
from tether.http.ratelimit.algorithms import Algorithm, Decision, Limit
from tether.http.redis_pipeline import Pipeliner

# Returns "allowed remaining reset_after_us retry_after_us" as one string: a bulk string parses
# in two reads on the client where an array of four integers takes five (the parser is pure
# Python unless hiredis is installed). Same arithmetic as algorithms.sliding_window.
_SLIDING = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, period, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local index = math.floor(now / period)
local h = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local w, cur, prev = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
if w ~= index then
  if w == index - 1 then prev = cur else prev = 0 end
  cur = 0
end
local elapsed = now - index * period
local weight = (period - elapsed) / period
local left = period - elapsed
if prev * weight + cur + cost <= limit + 1e-9 then
  cur = cur + cost
  redis.call('HSET', KEYS[1], 'w', index, 'c', cur, 'p', prev)
  redis.call('PEXPIRE', KEYS[1], math.ceil(period * 2000))
  local remaining = math.max(0, math.floor(limit - (prev * weight + cur) + 1e-9))
  return string.format('1 %d %d 0', remaining, math.floor(left * 1000000))
end
local room, retry = limit - cost, 0
if room < 0 then
  retry = period * 2
elseif cur + cost > limit then
  retry = left + math.max(0, 1 - room / cur) * period
else
  retry = math.max(0, period * (1 - (room - cur) / prev) - elapsed)
end
return string.format('0 0 %d %d', math.floor(left * 1000000), math.ceil(retry * 1000000))
"""

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, period, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local base = math.max(tat, now)
local new_tat = base + interval * cost
local allow_at = new_tat - period
if now + 1e-9 < allow_at then
  return string.format('0 0 %d %d', math.floor((base - now) * 1000000),
                       math.ceil((allow_at - now) * 1000000))
end
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX',
           math.max(1, math.ceil((new_tat - now) * 1000)))
local remaining = math.max(0, math.floor((period - (new_tat - now)) / interval + 1e-9))
return string.format('1 %d %d 0', remaining, math.floor((new_tat - now) * 1000000))
"""

# Every Redis failure (down, timeout, READONLY, OOM, script error) becomes a StoreError, which
# the limiter turns into its failure policy: a rate limiter must never cause a 500.
_ERRORS = (RedisError, OSError)


class RedisRateLimitStore:
    """``batch=True`` shares round trips between concurrent decisions (``redis_pipeline``)."""

    def __init__(self, client: Redis, prefix: str = "tether:rl:", *, batch: bool = True) -> None:
        self._scripts = {
            Algorithm.SLIDING_WINDOW: client.register_script(_SLIDING),
            Algorithm.GCRA: client.register_script(_GCRA),
        }
        self._pipeliner = Pipeliner(client) if batch else None
        # The algorithms keep different shapes of state: never let them share a Redis key.
        self._prefixes = {a: f"{prefix}{a.value}:" for a in Algorithm}

    async def hit(self, key: str, limit: Limit, algorithm: Algorithm, cost: int = 1) -> Decision:
        script = self._scripts[algorithm]
        args = _args(limit, cost)
        try:
            if self._pipeliner is not None:
                reply = await self._pipeliner.call(script, self._prefixes[algorithm] + key, args)
            else:
                reply = await script(keys=[self._prefixes[algorithm] + key], args=args)
        except _ERRORS as exc:
            raise StoreError(f"redis rate-limit store: {exc}") from exc
        allowed, remaining, reset_us, retry_us = reply.split()
        return Decision(
            allowed == b"1", limit, int(remaining), int(reset_us) / 1e6, int(retry_us) / 1e6
        )


@functools.lru_cache(maxsize=1024)
def _args(limit: Limit, cost: int) -> list[bytes]:
    # Encoded once per (limit, cost): the client then sends the bytes as they are.
    period = (
        str(int(limit.period))
        if math.isclose(limit.period, round(limit.period))
        else repr(limit.period)
    )
    return [str(limit.limit).encode(), period.encode(), str(cost).encode()]
