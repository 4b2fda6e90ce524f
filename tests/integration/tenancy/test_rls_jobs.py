"""Background jobs under row-level security: a job takes the tenant of the transaction that
enqueues it and its de-duplication key is per tenant; an application role scoped to tenant A
sees, counts, retries, cancels and purges none of B's jobs, through the Python API and
``tether jobs --tenant``; an unscoped one sees nothing and cannot enqueue; the worker, as a
role that sees every tenant, runs each transactional job in a transaction scoped to the job's
tenant, so what the job writes there (a follow-up job) is that tenant's."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import psycopg
import pytest
from typer.testing import CliRunner, Result

from tests.support.tenancy import TenancyDb, tenancy_database
from tether.cli import app
from tether.core.errors import NotFoundError, StoreError
from tether.jobs import JobCall, JobContext, JobRegistry, Jobs, JobStore, JobWorker
from tether.queue import ItemFilter, ItemState
from tether.queue.postgres import create_pool
from tether.tenancy import tenant_scope

pytestmark = pytest.mark.timeout(90)


def registry() -> JobRegistry:
    reg = JobRegistry()

    @reg.job(name="parent", transactional=True)
    async def parent(n: int, ctx: JobContext) -> dict[str, Any]:
        # Written in the job's own transaction: the follow-up job takes its tenant from it.
        await Jobs(JobStore(ctx.tx), reg).enqueue("child", {"n": n}, tx=ctx.tx)
        return {"tenant": ctx.tenant, "scope": await ctx.tx.fetchval("SELECT tether_tenant()")}

    @reg.job(name="child")
    async def child(n: int) -> None:
        return None

    @reg.job(name="boom", max_attempts=1)
    async def boom(n: int) -> None:
        raise RuntimeError("boom")

    return reg


REG = registry()


@dataclass
class Seeded:
    db: TenancyDb
    ids: dict[str, list[uuid.UUID]]  # per tenant: [boom, boom, later]


async def enqueue_in(dsn: str, tenant: str | None, calls: list[JobCall]) -> list[uuid.UUID]:
    """Enqueue ``calls`` in one transaction of ``dsn``'s role, scoped to ``tenant``."""
    pool = await create_pool(dsn, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            if tenant is not None:
                await tenant_scope(conn, tenant)
            refs = await Jobs(JobStore(pool), REG).enqueue_many(calls, tx=conn)
    finally:
        await pool.close()
    return [r.id for r in refs if r.id is not None]


async def run_everything(dsn: str) -> int:
    """One worker pass as ``dsn``'s role over the default queue, to the end."""
    pool = await create_pool(dsn, max_size=4)
    try:
        worker = JobWorker(Jobs(JobStore(pool), REG), concurrency=10, schedules=False)
        ran = await worker.run_once()
        await worker.drain()
        return ran
    finally:
        await pool.close()


@pytest.fixture
def db() -> Iterator[TenancyDb]:
    with tenancy_database() as created:
        yield created


@pytest.fixture
async def seeded(db: TenancyDb) -> Seeded:
    """acme and globex each: two jobs that fail for good (dead after one attempt) and one due
    in an hour (pending)."""
    calls = [
        JobCall("boom", {"n": 1}),
        JobCall("boom", {"n": 2}),
        JobCall("child", {"n": 3}, delay=timedelta(hours=1)),
    ]
    ids = {t: await enqueue_in(db.app, t, calls) for t in ("acme", "globex")}
    assert await run_everything(db.relay) == 4
    return Seeded(db, ids)


@pytest.fixture
async def stores(seeded: Seeded) -> AsyncIterator[dict[str, JobStore]]:
    opened = {
        "acme": await JobStore.connect(seeded.db.app, max_size=2, tenant="acme"),
        "none": await JobStore.connect(seeded.db.app, max_size=2),
        "owner": await JobStore.connect(seeded.db.admin, max_size=2),
    }
    try:
        yield opened
    finally:
        for store in opened.values():
            await store.close()


async def by_tenant(dsn: str, where: str = "true") -> dict[str | None, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            f"SELECT tenant_id, count(*) FROM tether_jobs WHERE {where} GROUP BY 1"
        )
    finally:
        await conn.close()
    return {r[0]: int(r[1]) for r in rows}


async def test_jobs_take_the_enqueuing_tenant_and_keys_are_per_tenant(db: TenancyDb) -> None:
    keyed = [JobCall("child", {"n": 1}, dedup_key="nightly")]
    acme, globex = (
        await enqueue_in(db.app, "acme", keyed),
        await enqueue_in(db.app, "globex", keyed),
    )
    assert acme != globex  # one tenant's key neither blocks nor names another's job
    assert await enqueue_in(db.app, "acme", keyed) == acme  # its own key still holds
    assert await by_tenant(db.admin) == {"acme": 1, "globex": 1}
    app_pool = await create_pool(db.app, max_size=1)
    try:
        with pytest.raises(StoreError, match="row-level security"):
            await Jobs(JobStore(app_pool), REG).enqueue("child", {"n": 2})  # unscoped
    finally:
        await app_pool.close()


async def test_a_tenant_sees_counts_retries_cancels_and_purges_only_its_jobs(
    seeded: Seeded, stores: dict[str, JobStore]
) -> None:
    mine, none, owner = stores["acme"], stores["none"], stores["owner"]
    acme, globex = seeded.ids["acme"], seeded.ids["globex"]
    # Unscoped: nothing to see, count, retry, cancel or purge.
    assert await none.engine.count() == 0
    assert await none.engine.list(ItemFilter(), limit=100) == []
    assert await none.engine.replay() == 0
    assert await none.engine.purge() == 0
    assert await none.cancel(acme[2]) is False
    # acme's scope: its three jobs only; globex's ids are not found.
    assert {i.id for i in await mine.engine.list(ItemFilter(), limit=100)} == set(acme)
    assert await mine.engine.count() == 3
    assert await mine.engine.count(states=(ItemState.DEAD,)) == 2
    for other in globex:
        with pytest.raises(NotFoundError):
            await mine.engine.get(other)
        assert await mine.result(other) is None
    assert await mine.cancel(globex[2]) is False
    assert await mine.engine.replay(ItemFilter(ids=globex)) == 0
    assert await mine.engine.purge(ItemFilter(ids=globex)) == 0
    # ... and what it does to its own jobs.
    assert await mine.cancel(acme[2]) is True
    assert await mine.engine.replay(ItemFilter(ids=acme[:1])) == 1
    assert await mine.engine.purge() == 2  # acme[1] (dead) and acme[2] (cancelled)
    assert [i.id for i in await mine.engine.list(ItemFilter(), limit=10)] == acme[:1]
    # globex's jobs are untouched: two dead, one pending.
    globex_states = {
        i.id: i.state for i in await owner.engine.list(ItemFilter(ids=globex), limit=10)
    }
    assert globex_states == {
        globex[0]: ItemState.DEAD,
        globex[1]: ItemState.DEAD,
        globex[2]: ItemState.PENDING,
    }


async def test_the_worker_runs_each_job_scoped_to_its_tenant(db: TenancyDb) -> None:
    for tenant, n in (("acme", 1), ("globex", 2)):
        await enqueue_in(db.app, tenant, [JobCall("parent", {"n": n})])
    await enqueue_in(db.admin, None, [JobCall("parent", {"n": 3})])  # the owner's, no tenant
    assert await run_everything(db.relay) == 3
    conn = await asyncpg.connect(db.admin)
    try:
        parents = await conn.fetch(
            "SELECT tenant_id, result FROM tether_jobs WHERE name = 'parent' AND state = 'done'"
        )
        children = await conn.fetch(
            "SELECT tenant_id, payload->>'n' AS n FROM tether_jobs WHERE name = 'child'"
        )
    finally:
        await conn.close()
    results = {r["tenant_id"]: json.loads(r["result"]) for r in parents}
    assert results == {
        "acme": {"tenant": "acme", "scope": "acme"},
        "globex": {"tenant": "globex", "scope": "globex"},
        None: {"tenant": None, "scope": None},
    }
    assert {r["n"]: r["tenant_id"] for r in children} == {"1": "acme", "2": "globex", "3": None}


# -- tether jobs --tenant ------------------------------------------------------------------


def cli(dsn: str, *args: str, input: str | None = None) -> Result:
    env = {"TETHER_DATABASE_URL": dsn}
    return CliRunner().invoke(app, ["jobs", *args], env=env, input=input, catch_exceptions=False)


def listed(dsn: str, *args: str) -> set[str]:
    result = cli(dsn, "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return {json.loads(line)["id"] for line in result.stdout.splitlines() if line}


def test_the_cli_stays_inside_the_tenant(seeded: Seeded) -> None:
    db = seeded.db
    acme = [str(i) for i in seeded.ids["acme"]]
    globex = [str(i) for i in seeded.ids["globex"]]
    assert listed(db.app, "--tenant", "acme") == set(acme)
    assert listed(db.app) == set()  # no tenant: row-level security shows nothing
    assert listed(db.admin, "--tenant", "globex") == set(globex)  # the owner is filtered
    for dsn in (db.app, db.admin):
        shown = cli(dsn, "show", globex[0], "--tenant", "acme", "--json")
        assert shown.exit_code != 0 and "no job" in shown.output
        cancelled = cli(dsn, "cancel", globex[2], "--tenant", "acme")
        assert cancelled.exit_code != 0
        retried = cli(dsn, "retry", globex[0], "--tenant", "acme")
        assert "retried 0" in retried.stdout
        assert cli(dsn, "retry", "--all-dead", "--tenant", "acme").exit_code == 0
        purged = cli(dsn, "purge", "--tenant", "acme", "--yes")
        assert purged.exit_code == 0
    mine = cli(db.app, "show", acme[2], "--tenant", "acme", "--json")
    assert mine.exit_code == 0 and json.loads(mine.stdout)["tenant_id"] == "acme"
    assert cli(db.app, "cancel", acme[2], "--tenant", "acme").exit_code == 0
    with psycopg.connect(db.admin) as conn:
        dead = conn.execute(
            "SELECT tenant_id, count(*) FROM tether_jobs WHERE state = 'dead' GROUP BY 1"
        ).fetchall()
    assert dict(dead) == {"acme": 1, "globex": 2}
    bad = cli(db.app, "list", "--tenant", "no spaces")
    assert bad.exit_code == 2 and "--tenant" in bad.output
