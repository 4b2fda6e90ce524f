"""Work items under row-level security: an item takes the tenant of the transaction that
enqueues it; an application role scoped to tenant A sees, counts, replays and purges none of
B's items, an unscoped one sees nothing and cannot enqueue; workers, as the owner, claim every
tenant's items."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import asyncpg
import pytest

from tests.support.tenancy import TenancyDb, tenancy_database
from tether.core.errors import StoreError
from tether.queue import ItemState, NewItem
from tether.queue.postgres import PostgresQueue
from tether.tenancy import SETTING, tenant_scope

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def db() -> Iterator[TenancyDb]:
    with tenancy_database() as created:
        yield created


async def pool(dsn: str, tenant: str | None = None) -> asyncpg.Pool:
    settings = {SETTING: tenant} if tenant else {}
    return await asyncpg.create_pool(dsn, min_size=1, max_size=2, server_settings=settings)


@pytest.fixture
async def seeded(db: TenancyDb) -> TenancyDb:
    app = await pool(db.app)
    try:
        queue = PostgresQueue(app, queue="jobs")
        async with app.acquire() as conn:
            for tenant, n in (("acme", 3), ("globex", 2)):
                async with conn.transaction():
                    await tenant_scope(conn, tenant)
                    await queue.enqueue([NewItem({"i": i}) for i in range(n)], tx=conn)
    finally:
        await app.close()
    return db


async def test_items_take_the_enqueuing_transactions_tenant(seeded: TenancyDb) -> None:
    owner = await asyncpg.connect(seeded.admin)
    try:
        rows = await owner.fetch("SELECT tenant_id, count(*) FROM tether_items GROUP BY 1")
    finally:
        await owner.close()
    assert dict(rows) == {"acme": 3, "globex": 2}


async def test_an_unscoped_enqueue_is_refused(db: TenancyDb) -> None:
    app = await pool(db.app)
    try:
        with pytest.raises(StoreError, match="row-level security"):
            await PostgresQueue(app, queue="jobs").enqueue([NewItem({})])
    finally:
        await app.close()


async def test_a_scoped_role_sees_counts_replays_and_purges_only_its_tenant(
    seeded: TenancyDb,
) -> None:
    owner_pool = await pool(seeded.admin)
    unscoped, acme = await pool(seeded.app), await pool(seeded.app, "acme")
    try:
        worker = PostgresQueue(owner_pool, queue="jobs")
        claimed = await worker.claim(10, lease=timedelta(seconds=30), worker="w")
        assert len(claimed) == 5  # workers run as the owner and take every tenant's items
        for c in claimed:
            await worker.dead_letter(c, "boom")
        assert await PostgresQueue(unscoped, queue="jobs").count() == 0
        assert await PostgresQueue(unscoped, queue="jobs").replay() == 0
        mine = PostgresQueue(acme, queue="jobs")
        assert await mine.count() == 3
        assert len(await mine.list()) == 3
        assert await mine.replay() == 3
        assert await worker.count(states=(ItemState.DEAD,)) == 2  # globex's stay dead
        assert await mine.purge() == 0  # nothing of acme's is dead any more
        claimed = await worker.claim(10, lease=timedelta(seconds=30), worker="w")
        for c in claimed:
            await worker.dead_letter(c, "boom")
        assert await mine.purge() == 3
        assert await worker.count() == 2
    finally:
        for p in (owner_pool, unscoped, acme):
            await p.close()
