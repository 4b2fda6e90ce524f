"""Background jobs on PostgreSQL: declare, enqueue in a business transaction, run, recover.

Run: ``.venv/bin/python examples/jobs_quickstart.py [ADMIN_DSN]`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``): it creates a scratch database, applies
Tether's migrations, and drops the database at the end.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import timedelta

import asyncpg

from tether.jobs import (
    InvalidJobArgumentsError,
    JobContext,
    JobRegistry,
    Jobs,
    JobStore,
    JobWorker,
    UnknownJobError,
)
from tether.queue.postgres import create_pool
from tether.store import migrations

jobs_registry = JobRegistry()  # or the default one: `from tether.jobs import job`


@jobs_registry.job(name="send_receipt", queue="mail", max_attempts=5, timeout=30)
async def send_receipt(order_id: int, email: str) -> str:
    return f"sent receipt for order {order_id} to {email}"


@jobs_registry.job(name="charge", transactional=True)
async def charge(ctx: JobContext, order_id: int) -> None:
    # Written in the job's own transaction, which also marks the job done: exactly once.
    await ctx.tx.execute("INSERT INTO charges (order_id, job_id) VALUES ($1, $2)", order_id, ctx.id)


async def demo(dsn: str) -> None:
    pool = await create_pool(dsn)
    await pool.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    await pool.execute("CREATE TABLE charges (order_id int, job_id uuid)")
    jobs = Jobs(JobStore(pool), jobs_registry)

    # In the caller's transaction: the jobs exist iff the order commits.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO orders (id) VALUES (7)")
        receipt = await jobs.enqueue("send_receipt", {"order_id": 7, "email": "a@example.com"},
                                     tx=conn)  # fmt: skip
        await jobs.enqueue(charge, {"order_id": 7}, tx=conn, dedup_key="charge:7")

    # Refused before anything is written.
    try:
        await jobs.enqueue("send_reciept", {"order_id": 7})
    except UnknownJobError as exc:
        print("refused:", exc)
    try:
        await jobs.enqueue("send_receipt", {"order_id": "seven", "email": "a@example.com"})
    except InvalidJobArgumentsError as exc:
        print("refused:", str(exc).splitlines()[0])

    worker = JobWorker(jobs, queues={"mail": 4, "default": 4})
    while await worker.run_once():  # or `await worker.run(stop_event)` as a service
        pass
    print("receipt:", await jobs.store.result(receipt.id))
    print("charged once:", await pool.fetchval("SELECT count(*) FROM charges"))

    # A worker that dies mid-job stops heartbeating; after stale_after the job comes back.
    again = await jobs.enqueue("send_receipt", {"order_id": 8, "email": "b@example.com"})
    await jobs.store.claim("mail", 1, lease=timedelta(seconds=1), worker="crashed:1")
    await asyncio.sleep(1.1)
    rescuer = JobWorker(jobs, queues={"mail": 4}, stale_after=timedelta(seconds=1),
                        heartbeat_every=timedelta(milliseconds=300))  # fmt: skip
    await rescuer.recover_once()
    await rescuer.run_once()
    item = await jobs.store.engine.get(again.id)
    print("recovered:", [e.error for e in item.errors], item.state.value)
    await pool.close()


async def main(admin_dsn: str) -> None:
    name = f"tether_jobs_example_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(migrations.upgrade, dsn)
        await demo(dsn)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
    )
