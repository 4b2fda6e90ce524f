"""A job worker process for the jobs chaos test, killed with SIGKILL by the test.

Run as ``python -m tests.chaos.jobs_worker_process DSN``. Its one job writes its side effect
through ``ctx.tx``, the job's own transaction, which also records the job's completion.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from tether.jobs import JobContext, JobRegistry, Jobs, JobStore, JobWorker
from tether.queue.postgres import create_pool

STALE_AFTER = timedelta(seconds=2)
CONCURRENCY = 12
registry = JobRegistry()


@registry.job(name="effect", transactional=True, max_attempts=25)
async def effect(ctx: JobContext, n: int) -> int:
    await ctx.tx.execute("INSERT INTO effects (job, n) VALUES ($1, $2)", ctx.id, n)
    await asyncio.sleep(0.005)  # a little work, so kills land inside open transactions
    return n


async def main(dsn: str) -> None:
    pool = await create_pool(dsn, max_size=CONCURRENCY + 4)
    worker = JobWorker(
        Jobs(JobStore(pool), registry),
        concurrency=CONCURRENCY,
        stale_after=STALE_AFTER,
        heartbeat_every=timedelta(milliseconds=400),
        recover_every=timedelta(milliseconds=200),
        poll_interval=0.05,
    )
    print("worker ready", flush=True)
    await worker.run(asyncio.Event())  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
