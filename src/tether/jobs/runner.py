"""Calling a job's function: async on the loop, sync on a thread, both under its timeout.

A timed-out async job is cancelled. A thread cannot be cancelled: a sync job gets its
``ctx.cancelled`` event set and a short grace to return; one that ignores it is reported
(``stuck``), left to finish on its own daemon thread, and its slot is given back, so a hung
sync job costs one thread, never a worker slot or the process's exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable
from typing import Any

from tether.jobs.metrics import JOBS_STUCK_THREADS
from tether.jobs.registry import Job, JobContext

log = logging.getLogger("tether.jobs.worker")

# How long a sync job gets to notice ctx.cancelled after its timeout before it is reported.
CANCEL_GRACE_S = 1.0


class JobTimeoutError(Exception):
    """The job ran past its timeout (it is retried like any failure)."""


def in_thread(fn: Callable[[], Any]) -> asyncio.Future[Any]:
    """Run ``fn`` on a new daemon thread; the answer arrives on the calling loop.

    One thread per running sync job, bounded by the worker's slots: a pool thread that hangs
    would keep its place (and block interpreter exit); a daemon thread does neither.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def deliver(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def body() -> None:
        try:
            value = context.run(fn)
        except BaseException as exc:  # handed to the awaiting coroutine
            outcome = (False, exc)
        else:
            outcome = (True, value)
        # The loop may have closed while the thread ran: then nobody is waiting.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver, *outcome)

    threading.Thread(target=body, name="tether-job", daemon=True).start()
    # An abandoned thread's late error is nobody's to read: mark it retrieved.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return future


class Runner:
    def __init__(self) -> None:
        self.stuck = 0  # sync jobs that ignored cancellation

    async def call(
        self, job: Job, kwargs: dict[str, Any], ctx: JobContext, timeout: float | None
    ) -> Any:
        if job.context_param is not None:
            kwargs = {**kwargs, job.context_param: ctx}
        if job.is_async:
            return await self._call_async(job, kwargs, timeout)
        return await self._call_sync(job, kwargs, ctx, timeout)

    @staticmethod
    async def _call_async(job: Job, kwargs: dict[str, Any], timeout: float | None) -> Any:
        if timeout is None:
            return await job.fn(**kwargs)
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                return await job.fn(**kwargs)
        except TimeoutError:
            if scope.expired():  # ours, not a TimeoutError the job raised itself
                raise JobTimeoutError(
                    f"ran longer than its {timeout:g}s timeout; cancelled"
                ) from None
            raise

    async def _call_sync(
        self, job: Job, kwargs: dict[str, Any], ctx: JobContext, timeout: float | None
    ) -> Any:
        future = in_thread(lambda: job.fn(**kwargs))
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            if future.done() and future.exception() is None:
                return future.result()
        except asyncio.CancelledError:
            ctx.cancelled.set()  # shutdown or a lost lease: ask the thread to stop
            raise
        ctx.cancelled.set()
        try:
            async with asyncio.timeout(CANCEL_GRACE_S):
                await asyncio.shield(future)
        except TimeoutError:
            self.stuck += 1
            JOBS_STUCK_THREADS.inc()
            log.error(
                "sync job %s (%s) ignored cancellation after its %gs timeout: its thread keeps "
                "running and its slot was reclaimed (check ctx.cancelled in long sync jobs)",
                ctx.id, job.name, timeout,
            )  # fmt: skip
            raise JobTimeoutError(
                f"ran longer than its {timeout:g}s timeout and ignored cancellation "
                "(sync job; its thread was abandoned)"
            ) from None
        except Exception as exc:  # it stopped, with an error, after being asked to
            log.info("sync job %s stopped after its timeout with %r", ctx.id, exc)
        raise JobTimeoutError(f"ran longer than its {timeout:g}s timeout; cancelled")
