"""Breaker state shared through Redis: every instance using the same Redis and guard name
sees one circuit.

Each step is one Lua script (the rules of ``tether.guard.policy``), so two instances failing
at once count both failures and one probe at a time passes a half-open circuit. Times come from
each caller's clock (Unix seconds); hosts' clocks should agree within a small part of
``open_s``.

When Redis does not answer (down, slow past ``timeout_s``, or any Redis error) the store logs
one warning and decides on local state, then tries Redis again after ``retry_s``; guarded calls
never fail because the store did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar, cast

import redis.asyncio as aioredis
import redis.exceptions
from redis.commands.core import AsyncScript

from tether.guard.metrics import GUARD_STORE_ERRORS
from tether.guard.policy import Admission, BreakerPolicy, Record, State
from tether.guard.store import MemoryBreakerStore

log = logging.getLogger("tether.guard")

T = TypeVar("T")

_STEP: Final = """
local op, now = ARGV[1], tonumber(ARGV[2])
local threshold, window, open_s = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local half_max, ttl_ms = tonumber(ARGV[6]), tonumber(ARGV[7])
local h = redis.call('HMGET', KEYS[1], 's', 'f', 'ws', 'ou', 'p', 'ps')
local s = h[1] or 'closed'
local f, ws, ou = tonumber(h[2]) or 0, tonumber(h[3]) or 0, tonumber(h[4]) or 0
local p, ps = tonumber(h[5]) or 0, tonumber(h[6]) or 0
-- what time alone has changed (policy.current)
if s == 'open' and now >= ou then
  s, f, ws, ou, p, ps = 'half_open', 0, 0, 0, 0, now
elseif s == 'half_open' and now - ps >= open_s then
  p, ps = 0, now
end
local allowed, retry = 1, 0
if op == 'admit' then
  if s == 'open' then
    allowed, retry = 0, ou - now
  elseif s == 'half_open' then
    if p < half_max then p = p + 1 else allowed, retry = 0, math.max(0, ps + open_s - now) end
  end
elseif op == 'success' then
  if s == 'half_open' then s, f, ws, ou, p, ps = 'closed', 0, 0, 0, 0, 0 end
elseif op == 'failure' then
  if s == 'half_open' then
    s, f, ws, ou, p, ps = 'open', 0, 0, now + open_s, 0, 0
  elseif s == 'closed' then
    if now - ws >= window then f, ws = 0, now end
    f = f + 1
    if f >= threshold then s, f, ws, ou, p, ps = 'open', 0, 0, now + open_s, 0, 0 end
  end
end
if op ~= 'state' then
  local function n(x) return string.format('%.17g', x) end
  redis.call('HSET', KEYS[1], 's', s, 'f', f, 'ws', n(ws), 'ou', n(ou), 'p', p, 'ps', n(ps))
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
end
return {allowed, s, string.format('%.17g', retry)}
"""


class RedisBreakerStore:
    """Circuits in Redis under ``prefix + guard name``; local state while Redis is away."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "tether:guard:",
        *,
        timeout_s: float = 1.0,
        retry_s: float = 5.0,
    ) -> None:
        if not timeout_s > 0 or retry_s < 0:
            raise ValueError("timeout_s must be positive and retry_s not negative")
        self._client = client
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._script: AsyncScript = client.register_script(_STEP)
        self._local = MemoryBreakerStore()
        self._away_until = 0.0  # monotonic time before which Redis is not asked

    async def admit(self, name: str, policy: BreakerPolicy, now: float) -> Admission:
        async def shared() -> Admission:
            allowed, state, retry = await self._step("admit", name, policy, now)
            return Admission(allowed, state, retry)

        return await self._either(name, shared, lambda: self._local.admit(name, policy, now))

    async def success(self, name: str, policy: BreakerPolicy, now: float) -> State:
        return await self._state_step("success", name, policy, now, self._local.success)

    async def failure(self, name: str, policy: BreakerPolicy, now: float) -> State:
        return await self._state_step("failure", name, policy, now, self._local.failure)

    async def state(self, name: str, policy: BreakerPolicy, now: float) -> State:
        return await self._state_step("state", name, policy, now, self._local.state)

    async def records(self, names: Sequence[str]) -> dict[str, Record | None]:
        """The stored records of ``names`` in one round trip (a pipeline of ``HMGET``, no
        script, nothing written). Unlike the deciding steps this does not fall back to local
        state: it raises the Redis error (or ``TimeoutError`` after ``timeout_s``), since a
        view must not show this process's guess as the shared state."""
        if not names:
            return {}
        async with asyncio.timeout(self._timeout_s):
            async with self._client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hmget(self._prefix + name, _FIELDS)
                rows = cast(list[list[Any]], await pipe.execute())
        return {name: _record(row) for name, row in zip(names, rows, strict=True)}

    async def reset(self, name: str) -> bool:
        """Delete the circuit's record: every instance sees it closed with no failures.
        Raises when Redis does not answer (an operator must know the reset did not happen)."""
        async with asyncio.timeout(self._timeout_s):
            deleted = await self._client.delete(self._prefix + name)
        return bool(deleted)

    @property
    def where(self) -> str:
        """The Redis and key prefix of these circuits, for messages (never a password)."""
        kwargs = self._client.connection_pool.connection_kwargs
        if "path" in kwargs:
            at = f"unix://{kwargs['path']}"
        else:
            at = f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', 6379)}"
        return f"{at}/{kwargs.get('db', 0)} {self._prefix}*"

    @property
    def degraded(self) -> bool:
        """True while decisions are made on local state because Redis did not answer."""
        return self._away_until > 0

    async def _state_step(
        self,
        op: str,
        name: str,
        policy: BreakerPolicy,
        now: float,
        local: Callable[[str, BreakerPolicy, float], Awaitable[State]],
    ) -> State:
        async def shared() -> State:
            return (await self._step(op, name, policy, now))[1]

        return await self._either(name, shared, lambda: local(name, policy, now))

    async def _either(
        self, name: str, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        if self._away_until and time.monotonic() < self._away_until:
            return await local()
        try:
            async with asyncio.timeout(self._timeout_s):
                answer = await shared()
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            GUARD_STORE_ERRORS.inc()
            if not self._away_until:
                log.warning(
                    "guard %r: breaker store Redis did not answer (%s: %s); deciding on local "
                    "state, trying Redis again every %s s",
                    name,
                    type(exc).__name__,
                    exc,
                    self._retry_s,
                )
            self._away_until = time.monotonic() + self._retry_s
            return await local()
        if self._away_until:
            log.warning("guard %r: breaker store Redis answers again; state is shared", name)
            self._away_until = 0.0
        return answer

    async def _step(
        self, op: str, name: str, policy: BreakerPolicy, now: float
    ) -> tuple[bool, State, float]:
        ttl_ms = int(2000 * max(policy.window_s, policy.open_s)) + 60_000
        args: list[Any] = [
            op,
            repr(now),
            policy.failure_threshold,
            repr(float(policy.window_s)),
            repr(float(policy.open_s)),
            policy.half_open_max_calls,
            ttl_ms,
        ]
        raw = cast(list[Any], await self._script(keys=[self._prefix + name], args=args))
        state = raw[1].decode() if isinstance(raw[1], bytes) else str(raw[1])
        retry = raw[2].decode() if isinstance(raw[2], bytes) else str(raw[2])
        return bool(int(raw[0])), cast(State, state), float(retry)


_FIELDS: Final = ("s", "f", "ws", "ou", "p", "ps")  # the hash fields the script writes


def _record(row: list[Any]) -> Record | None:
    """A record from the script's hash fields (``HMGET`` order), None when none is stored."""
    if row[0] is None:
        return None
    text = [v.decode() if isinstance(v, bytes) else v for v in row]

    def number(value: str | None) -> float:
        return float(value) if value else 0.0

    return Record(
        state=cast(State, text[0]),
        failures=int(number(text[1])),
        window_start=number(text[2]),
        open_until=number(text[3]),
        probes=int(number(text[4])),
        probing_since=number(text[5]),
    )
