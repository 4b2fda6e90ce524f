"""A generic worker loop over the :class:`WorkQueue` port: claim, run, complete or fail.

``run_once()`` does one batch and returns how many items it handled, so tests drive the loop
step by step; ``run(stop)`` repeats it, waiting on ``wake()`` or the poll interval when idle.
While a batch runs, a heartbeat task keeps its leases alive, so a slow handler keeps its items
and a dead process loses them once the lease expires.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from tether.core.backoff import RetryPolicy
from tether.core.errors import ConfigError, LeaseLostError, StoreError
from tether.queue.ports import Claimed, WorkQueue
from tether.queue.spec import TableSpec

log = logging.getLogger("tether.queue.worker")

Handler = Callable[[Claimed], Awaitable[None]]


class Defer(Exception):
    """Raise from a handler to postpone its item without spending an attempt: its destination
    is down, or it is not its turn yet. Give ``until`` (a time) or ``delay`` (a duration)."""

    def __init__(
        self,
        *,
        until: datetime | None = None,
        delay: timedelta | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(reason or "deferred")
        self.until, self.delay, self.reason = until, delay, reason


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(
        self,
        queue: WorkQueue[Any],
        handler: Handler,
        *,
        name: str | None = None,
        batch: int = 10,
        concurrency: int = 1,
        lease: timedelta = timedelta(seconds=30),
        policy: RetryPolicy | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        if batch < 1 or concurrency < 1:
            raise ConfigError("worker batch and concurrency must be at least 1")
        if lease <= timedelta(0):
            raise ConfigError(f"worker lease must be positive, got {lease}")
        spec = getattr(queue, "spec", None)
        if isinstance(spec, TableSpec) and not spec.leased:
            # Fail at construction, not at the first claim inside a running loop.
            raise ConfigError(
                f"a Worker cannot lease rows of {spec.name}: they are delivered by the relay "
                "under row locks; run a relay for them"
            )
        self.queue = queue
        self.handler = handler
        self.name = name or default_worker_name()
        self.batch = batch
        self.lease = lease
        self.policy = policy
        self.poll_interval = poll_interval
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        # Set while ``run`` has found nothing to do: tests wait on it instead of sleeping.
        self.idle = asyncio.Event()
        # Counters for tests and metrics.
        self.completed = 0
        self.failed = 0
        self.deferred = 0
        self.lost = 0
        self.batches = 0

    def wake(self) -> None:
        """Make an idle ``run`` claim again now (e.g. after a NOTIFY)."""
        self._wake.set()

    async def run_once(self) -> int:
        claimed = await self.queue.claim(self.batch, lease=self.lease, worker=self.name)
        if not claimed:
            return 0
        held = {c.item.seq: c for c in claimed}
        beat = asyncio.create_task(self._heartbeat(held))
        try:
            await asyncio.gather(*(self._run_one(c, held) for c in claimed))
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
        self.batches += 1
        return len(claimed)

    async def _run_one(self, claimed: Claimed, held: dict[int, Claimed]) -> None:
        async with self._slots:
            try:
                await self.handler(held.get(claimed.item.seq, claimed))
            except Defer as later:
                await self._finish(claimed, held, None, later)
            except Exception as exc:  # the handler's failure is the item's, not the loop's
                error = f"{type(exc).__name__}: {exc}"
                await self._finish(claimed, held, error)
            else:
                await self._finish(claimed, held, None)

    async def _finish(
        self,
        claimed: Claimed,
        held: dict[int, Claimed],
        error: str | None,
        later: Defer | None = None,
    ) -> None:
        current = held.pop(claimed.item.seq, claimed)
        try:
            if later is not None:
                await self._defer(current, later)
            elif error is None:
                await self.queue.complete(current)
                self.completed += 1
            else:
                await self._fail(current, error)
        except LeaseLostError:
            # Someone else holds the item now and will run it; our result is discarded.
            self.lost += 1
            log.warning("lease lost on item %s; its result was discarded", claimed.id)
        except StoreError as exc:
            # The outcome was not recorded; the item comes back when its lease expires.
            self.lost += 1
            log.warning("could not record the outcome of item %s: %s", claimed.id, exc)

    async def _fail(self, claimed: Claimed, error: str) -> None:
        state = await self.queue.fail(claimed, error, policy=self.policy)
        self.failed += 1
        log.info("item %s failed (%s): %s", claimed.id, state.value, error)

    async def _defer(self, claimed: Claimed, later: Defer) -> None:
        """Defer the item; a malformed request fails it instead, naming the problem."""
        try:
            await self.queue.defer(
                claimed, until=later.until, delay=later.delay, reason=later.reason
            )
        except ConfigError as exc:
            await self._fail(claimed, f"handler raised an invalid Defer: {exc}")
            return
        self.deferred += 1

    async def _heartbeat(self, held: dict[int, Claimed]) -> None:
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            for seq, claimed in list(held.items()):
                try:
                    renewed = await self.queue.heartbeat(claimed, self.lease)
                except LeaseLostError:
                    held.pop(seq, None)
                    continue
                if seq in held:
                    held[seq] = renewed

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set. Store errors (database restarting) are logged and retried."""
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except StoreError as exc:
                log.warning("worker %s: store error, retrying: %s", self.name, exc)
                handled = 0
            if handled:
                self.idle.clear()
                continue
            self.idle.set()
            await self._idle(stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        waits = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
        try:
            await asyncio.wait(
                waits, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        self._wake.clear()
