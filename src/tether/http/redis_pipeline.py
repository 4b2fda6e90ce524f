"""Share Redis round trips between concurrent script calls (rate-limit decisions, idempotency
records).

Calls made during one event-loop turn are sent as one pipeline: one write, one read, one
pooled connection, however many requests are waiting. Each call is still its own EVALSHA, so
each stays atomic; only the network trip is shared. Under no concurrency a batch holds one
call and costs one loop turn of latency.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from tether.core.errors import StoreError

_Call = tuple[AsyncScript, str, Sequence[Any]]


class Pipeliner:
    """The first caller of an event-loop turn leads: it yields once so that every task ready in
    the same turn can join, then sends the batch and hands each joiner its reply. No task or
    timer is created per batch, so a lone caller pays one loop turn and a plain EVALSHA."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._batch: list[_Call] | None = None
        self._futures: list[asyncio.Future[Any]] = []

    async def call(self, script: AsyncScript, key: str, args: Sequence[Any]) -> Any:
        if self._batch is not None:  # a leader is collecting this turn: join its batch
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._batch.append((script, key, args))
            self._futures.append(future)
            return await future
        batch: list[_Call] = [(script, key, args)]
        futures: list[asyncio.Future[Any]] = []
        self._batch, self._futures = batch, futures
        try:
            await asyncio.sleep(0)
        except BaseException:  # cancelled before sending: the joiners must not wait forever
            self._batch, self._futures = None, []
            _fail(futures, StoreError("redis: the batch was abandoned; retry"))
            raise
        self._batch, self._futures = None, []
        if not futures:
            return await self._one(script, key, args)
        try:
            results = await self._execute(batch)
        except BaseException as exc:  # the leader failed or was cancelled: nobody waits forever
            _fail(futures, StoreError(f"redis: {exc!r}"))
            raise
        for future, result in zip(futures, results[1:], strict=True):
            if not future.done():  # the joiner may have given up (timeout)
                if isinstance(result, BaseException):
                    future.set_exception(StoreError(f"redis: {result}"))
                else:
                    future.set_result(result)
        if isinstance(results[0], BaseException):
            raise StoreError(f"redis: {results[0]}") from results[0]
        return results[0]

    async def _one(self, script: AsyncScript, key: str, args: Sequence[Any]) -> Any:
        try:
            return await script(keys=[key], args=args)  # reloads itself on NOSCRIPT
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis: {exc}") from exc

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        try:
            results = await self._pipeline(batch)
            if any(isinstance(r, NoScriptError) for r in results):
                # Redis restarted or flushed its script cache: load once, send again.
                for script in {id(c[0]): c[0] for c in batch}.values():
                    await self._client.script_load(script.script)
                results = await self._pipeline(batch)
        except (RedisError, OSError) as exc:
            return [exc] * len(batch)
        return results

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for script, key, args in batch:
                pipe.evalsha(script.sha, 1, key, *args)
            return list(await pipe.execute(raise_on_error=False))


def _fail(futures: list[asyncio.Future[Any]], error: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)
