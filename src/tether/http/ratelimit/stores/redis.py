"""Redis rate-limit store: one EVALSHA per decision, clocked by the Redis server's TIME.

Using the server's clock means every app process agrees on window boundaries and TATs, even
when their own clocks drift. Each key is one Redis key (hash or string), so the scripts are
Redis Cluster safe. redis-py's ``register_script`` sends EVALSHA and reloads on NOSCRIPT.
"""

from __future__ import annotations

import math

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tether.core.errors import StoreError
from tether.http.ratelimit.algorithms import Algorithm, Decision, Limit

# Returns {allowed, remaining, reset_after_us, retry_after_us}. Same arithmetic as
# algorithms.sliding_window; times in microseconds so they travel as integers.
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
  return {1, remaining, math.floor(left * 1000000), 0}
end
local room, retry = limit - cost, 0
if room < 0 then
  retry = period * 2
elseif cur + cost > limit then
  retry = left + math.max(0, 1 - room / cur) * period
else
  retry = math.max(0, period * (1 - (room - cur) / prev) - elapsed)
end
return {0, 0, math.floor(left * 1000000), math.ceil(retry * 1000000)}
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
  return {0, 0, math.floor((base - now) * 1000000), math.ceil((allow_at - now) * 1000000)}
end
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX',
           math.max(1, math.ceil((new_tat - now) * 1000)))
local remaining = math.max(0, math.floor((period - (new_tat - now)) / interval + 1e-9))
return {1, remaining, math.floor((new_tat - now) * 1000000), 0}
"""

# Every Redis failure (down, timeout, READONLY, OOM, script error) becomes a StoreError, which
# the limiter turns into its failure policy: a rate limiter must never cause a 500.
_ERRORS = (RedisError, OSError)


class RedisRateLimitStore:
    def __init__(self, client: Redis, prefix: str = "tether:rl:") -> None:
        self._prefix = prefix
        self._scripts = {
            Algorithm.SLIDING_WINDOW: client.register_script(_SLIDING),
            Algorithm.GCRA: client.register_script(_GCRA),
        }

    async def hit(self, key: str, limit: Limit, algorithm: Algorithm, cost: int = 1) -> Decision:
        script = self._scripts[algorithm]
        try:
            reply = await script(
                keys=[self._prefix + key], args=[limit.limit, _num(limit.period), cost]
            )
        except _ERRORS as exc:
            raise StoreError(f"redis rate-limit store: {exc}") from exc
        allowed, remaining, reset_us, retry_us = (int(x) for x in reply)
        return Decision(bool(allowed), limit, remaining, reset_us / 1e6, retry_us / 1e6)


def _num(value: float) -> str:
    return str(int(value)) if math.isclose(value, round(value)) else repr(value)
