"""One statement settles a finished batch and claims the next: lease fencing of the settled
jobs, priorities of the claimed ones, and the worker's pipelined loop keeping every job once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest

from tether.core.errors import LeaseLostError
from tether.jobs import JobCall, JobRegistry, Jobs, JobWorker
from tether.jobs.store import RUN_COLUMNS, ClaimedRow
from tether.queue import Claimed, ItemState

LEASE = timedelta(seconds=30)


async def test_settles_with_fencing_and_claims_by_priority(jobs: Jobs, reg: JobRegistry) -> None:
    @reg.job(name="work")
    async def work(n: int) -> int:
        return n

    await jobs.enqueue_many([JobCall("work", {"n": n}) for n in range(2)])
    first = await jobs.store.claim("default", 2, lease=LEASE, worker="w:1")
    low = await jobs.enqueue("work", {"n": 10})
    high = await jobs.enqueue("work", {"n": 11}, priority=5)
    # A zombie's view of the second job: its token no longer matches the row's.
    stolen = Claimed(first[1].item, uuid.uuid4(), first[1].lease_expires_at)
    lost, claimed = await jobs.store.settle_and_claim(
        [(first[0], 0), (stolen, 1)], queue="default", limit=5, lease=LEASE, worker="w:1"
    )
    assert lost == [stolen]
    assert [c.id for c in claimed] == [high.id, low.id]  # priority first
    done = await jobs.store.engine.get(first[0].id)
    assert done is not None and done.state is ItemState.DONE
    assert await jobs.store.result(first[0].id) == 0
    untouched = await jobs.store.engine.get(first[1].id)
    assert untouched is not None and untouched.state is ItemState.CLAIMED


async def test_nothing_to_claim_still_settles(jobs: Jobs, reg: JobRegistry) -> None:
    @reg.job(name="work")
    async def work() -> None:
        return None

    await jobs.enqueue("work")
    [c] = await jobs.store.claim("default", 1, lease=LEASE, worker="w:1")
    lost, claimed = await jobs.store.settle_and_claim(
        [(c, None)], queue="default", limit=0, lease=LEASE, worker="w:1", keep=False
    )
    assert (lost, claimed) == ([], [])
    left = await jobs.store.pool.fetchval("SELECT count(*) FROM tether_jobs")
    assert left == 0  # deleted, keep=False


async def test_pipelined_worker_runs_each_job_once(jobs: Jobs, reg: JobRegistry) -> None:
    seen: list[int] = []

    @reg.job(name="work")
    async def work(n: int) -> None:
        seen.append(n)

    await jobs.enqueue_many([JobCall("work", {"n": n}) for n in range(500)])
    worker = JobWorker(jobs, concurrency=7, prefetch=9, poll_interval=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(30):
        while worker.stats.completed < 500:
            await asyncio.sleep(0.02)
    stop.set()
    await running
    assert sorted(seen) == list(range(500))
    left = await jobs.store.pool.fetchval("SELECT count(*) FROM tether_jobs WHERE state <> 'done'")
    assert left == 0


def test_a_worker_process_does_not_import_sqlalchemy() -> None:
    # Restarted workers pay every import; SQLAlchemy alone cost ~1.5 s per start here.
    code = "import sys, tether.jobs; print('sqlalchemy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "False", out.stderr


async def test_worker_claims_carry_the_run_columns_and_held_reads_the_row(
    jobs: Jobs, reg: JobRegistry
) -> None:
    @reg.job(name="work", max_attempts=3)
    async def work(n: int) -> None:
        return None

    ref = await jobs.enqueue("work", {"n": 1})
    done, [claim] = await jobs.store.settle_and_claim_rows(
        (), (), None, queue="default", limit=5, lease=LEASE, worker="w:1"
    )
    assert done == set()
    assert set(claim.row.keys()) == {"done_seqs", *RUN_COLUMNS}
    assert (claim.row["id"], claim.row["name"], claim.row["attempts"]) == (ref.id, "work", 1)
    held = await jobs.store.held(claim)  # the whole row, for the engine's transitions
    assert held.id == ref.id and held.item.state is ItemState.CLAIMED
    assert held.lease_token == claim.lease_token and held.item.max_attempts == 3
    zombie = ClaimedRow(claim.row, uuid.uuid4(), claim.lease_expires_at)
    with pytest.raises(LeaseLostError):
        await jobs.store.held(zombie)
    with pytest.raises(LeaseLostError):
        await jobs.store.complete_claim(zombie, None, conn=jobs.store.pool)
    await jobs.store.complete_claim(claim, 7, conn=jobs.store.pool)
    assert await jobs.store.result(ref.id) == 7
    with pytest.raises(LeaseLostError):  # finished: no longer held
        await jobs.store.held(claim)
