"""10,000 jobs, 4 worker processes, a random one SIGKILLed every 1-2 s and restarted:
every job's side effect, written in the job's own transaction, is there exactly once, every
job is done, none stays running, and the killed workers' jobs came back through stale-job
recovery (lease expiry)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time

import asyncpg
import pytest

from tests.chaos import jobs_worker_process as program
from tests.support.chaos import reap
from tether.jobs import RECOVERED, JobCall, Jobs, JobStore
from tether.queue.postgres import create_pool

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(330)]

# TETHER_TEST_CHAOS_JOBS lowers the count for a quick local check; CI runs the full 10,000.
JOBS = int(os.environ.get("TETHER_TEST_CHAOS_JOBS", "10000"))
WORKERS = 4
# A hang is caught by progress, not by the clock alone: no job may stay unfinished for
# STALL_S with none finishing (a kill costs stale_after, 2 s, plus a restart). The whole
# run's bound scales with the machine's load (shared CI runners), up to 3x the quiet bound.
STALL_S = 30
QUIET_DEADLINE_S = 90


def deadline_s() -> float:
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return QUIET_DEADLINE_S * min(3.0, max(1.0, load))


def spawn(dsn: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.chaos.jobs_worker_process", dsn],
        stdout=subprocess.PIPE,
        text=True,
    )


async def test_sigkilled_workers_lose_and_repeat_no_job(pg_dsn: str) -> None:
    pool = await create_pool(pg_dsn, max_size=4)
    procs: list[subprocess.Popen[str]] = []
    kills = 0
    try:
        await pool.execute("CREATE TABLE effects (job uuid NOT NULL, n int NOT NULL)")
        jobs = Jobs(JobStore(pool), program.registry)
        refs = await jobs.enqueue_many([JobCall("effect", {"n": n}) for n in range(JOBS)])
        assert all(r.created for r in refs)
        procs = [spawn(pg_dsn) for _ in range(WORKERS)]
        rng = random.Random(12)
        start = time.monotonic()
        next_kill = start + 2.0  # let the first workers start (an import takes ~0.5 s)
        last_left, progress_at = JOBS, start
        while True:
            left = await pool.fetchval(
                "SELECT count(*) FROM tether_jobs WHERE state IN ('pending', 'claimed')"
            )
            if left == 0:
                break
            now = time.monotonic()
            if left < last_left:
                last_left, progress_at = left, now
            assert now - progress_at < STALL_S, f"no job finished for {STALL_S}s ({left} left)"
            bound = deadline_s()
            assert now - start < bound, f"{left} jobs left after {bound:.0f}s"
            if time.monotonic() >= next_kill and left > 300:
                i = rng.randrange(WORKERS)
                procs[i].send_signal(signal.SIGKILL)
                assert procs[i].wait(10) == -signal.SIGKILL
                kills += 1
                procs[i] = spawn(pg_dsn)
                # 10,000 jobs take about 7-10 s: kill often enough for several kills.
                next_kill = time.monotonic() + rng.uniform(1.0, 2.0)
            await asyncio.sleep(0.25)
        elapsed = time.monotonic() - start

        states = dict(await pool.fetch("SELECT state, count(*) FROM tether_jobs GROUP BY state"))
        assert states == {"done": JOBS}, states  # none running, none dead
        per_job = await pool.fetch(
            "SELECT j.id, count(e.job) AS n FROM tether_jobs j "
            "LEFT JOIN effects e ON e.job = j.id GROUP BY j.id HAVING count(e.job) <> 1"
        )
        assert per_job == [], f"{len(per_job)} jobs without exactly one effect"
        assert await pool.fetchval("SELECT count(*) FROM effects") == JOBS
        recovered = await pool.fetchval(
            "SELECT count(*) FROM tether_jobs WHERE errors @> $1::jsonb",
            f'[{{"error": "{RECOVERED}"}}]',
        )
        daily = await pool.fetchval("SELECT sum(recovered) FROM tether_job_recoveries")
        print(f"{JOBS} jobs, {kills} kills, {recovered} recovered, {elapsed:.1f}s")
        assert kills >= 3 and recovered > 0 and daily >= recovered
        assert await pool.fetchval("SELECT count(*) FROM tether_jobs WHERE result IS NULL") == 0
    finally:
        reap(procs)
        await pool.close()
    assert isinstance(asyncpg, object)
