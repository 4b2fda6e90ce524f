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

_Call = tuple[AsyncScript, str, Sequence[Any], "asyncio.Future[Any]"]


class Pipeliner:
    def __init__(self, client: Redis, max_batch: int = 512) -> None:
        self._client = client
        self._max_batch = max_batch
        self._queue: list[_Call] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, script: AsyncScript, key: str, args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((script, key, args, future))
        if len(self._queue) == 1:
            loop.call_soon(self._flush)
        elif len(self._queue) >= self._max_batch:
            self._flush()
        return await future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)  # keep a reference until done (asyncio holds only weak ones)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            results = await self._execute(batch)
            if any(isinstance(r, NoScriptError) for r in results):
                # Redis restarted or flushed its script cache: load once, send again.
                for script in {id(c[0]): c[0] for c in batch}.values():
                    await self._client.script_load(script.script)
                results = await self._execute(batch)
        except (RedisError, OSError) as exc:
            results = [exc] * len(batch)
        except BaseException as exc:  # cancelled mid-flight: nobody may wait forever
            for *_, future in batch:
                if not future.done():
                    future.set_exception(StoreError(f"redis: {exc!r}"))
            raise
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller gave up (timeout)
                continue
            if isinstance(result, BaseException):
                future.set_exception(StoreError(f"redis: {result}"))
            else:
                future.set_result(result)

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for script, key, args, _ in batch:
                pipe.evalsha(script.sha, 1, key, *args)
            return list(await pipe.execute(raise_on_error=False))
