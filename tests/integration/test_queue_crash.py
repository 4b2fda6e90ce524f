"""A worker process killed with SIGKILL mid-batch loses nothing: its leases expire and another
worker finishes every item (at least once).

The file is also the worker program: ``python test_queue_crash.py <dsn>`` runs one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg

from tether.queue import NewItem
from tether.queue.ports import Claimed
from tether.queue.postgres import PostgresQueue, create_pool
from tether.queue.worker import Worker

ITEMS = 300
LEASE = timedelta(seconds=1)
QUEUE = "crash"


def make_handler(pool: asyncpg.Pool) -> Callable[[Claimed], Awaitable[None]]:
    async def handle(claimed: Claimed) -> None:
        # The side effect is logged before the ack, as a real handler's would be.
        await pool.execute(
            "INSERT INTO crash_log (id, pid) VALUES ($1, $2)", claimed.id, os.getpid()
        )
        await asyncio.sleep(0.01)  # a little work, so a kill lands inside a batch

    return handle


async def worker_main(dsn: str) -> None:
    pool = await create_pool(dsn, max_size=4)
    queue = PostgresQueue(pool, queue=QUEUE, keep_done=True)
    worker = Worker(queue, make_handler(pool), batch=20, lease=LEASE, poll_interval=0.05)
    await worker.run(asyncio.Event())  # runs until killed


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def test_sigkilled_worker_loses_no_item(pg_dsn: str) -> None:
    pool = await create_pool(pg_dsn, max_size=4)
    try:
        await pool.execute("CREATE TABLE crash_log (id uuid NOT NULL, pid int NOT NULL)")
        queue = PostgresQueue(pool, queue=QUEUE, keep_done=True)
        ids = set(await queue.enqueue([NewItem({"n": i}) for i in range(ITEMS)]))

        proc = subprocess.Popen([sys.executable, __file__, pg_dsn])
        try:

            async def mid_batch() -> bool:
                assert proc.poll() is None, f"the worker exited early with {proc.returncode}"
                logged = await pool.fetchval("SELECT count(*) FROM crash_log")
                return logged >= 50 and (await queue.stats()).claimed > 0

            await wait_for(mid_batch, 30, "the worker to be inside a batch")
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

        orphaned = (await queue.stats()).claimed
        assert orphaned > 0, "the kill should have left leased items behind"

        survivor = Worker(
            queue, make_handler(pool), batch=50, concurrency=10, lease=LEASE, poll_interval=0.05
        )
        stop = asyncio.Event()
        running = asyncio.create_task(survivor.run(stop))

        async def all_done() -> bool:
            return (await queue.stats()).done == ITEMS

        try:
            await wait_for(all_done, 30, "every item to be completed")
        finally:
            stop.set()
            await running

        logged = {r["id"] for r in await pool.fetch("SELECT DISTINCT id FROM crash_log")}
        assert logged == ids  # none lost
        stats = await queue.stats()
        assert (stats.pending, stats.claimed, stats.dead, stats.done) == (0, 0, 0, ITEMS)
        retried = await pool.fetchval(
            "SELECT count(*) FROM tether_items WHERE attempts = 2 AND worker = $1", survivor.name
        )
        assert retried == orphaned  # the orphans came back through lease expiry
    finally:
        await pool.close()


if __name__ == "__main__":
    asyncio.run(worker_main(sys.argv[1]))
