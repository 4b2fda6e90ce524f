"""Row-level security on the outbox: an application role scoped to tenant A sees, counts,
replays and purges none of tenant B's events or idempotency keys; an unscoped transaction sees
nothing (fails closed); the relay's BYPASSRLS role sees every tenant; a bad tenant id is refused
before anything is written."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import psycopg
import pytest

from tests.support.tenancy import TenancyDb, tenancy_database
from tether.core.errors import EventValidationError
from tether.outbox import ProducerPolicy, add_event, add_event_sync, configure
from tether.outbox.table import OUTBOX
from tether.queue.postgres import PostgresQueue
from tether.tenancy import SETTING, tenant_scope, tenant_scope_sync

pytestmark = pytest.mark.timeout(60)

COUNT = "SELECT count(*) FROM tether_outbox"


@pytest.fixture
def db() -> Iterator[TenancyDb]:
    previous = configure(ProducerPolicy(tenancy=True))
    try:
        with tenancy_database() as created:
            yield created
    finally:
        configure(previous)


async def write(dsn: str, tenant: str, n: int, **fields: object) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for i in range(n):
                await add_event(conn, "OrderPlaced", {"i": i}, tenant_id=tenant, **fields)
    finally:
        await conn.close()


async def scalar(dsn: str, sql: str, tenant: str | None = None) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            if tenant is not None:
                await tenant_scope(conn, tenant)
            return int(await conn.fetchval(sql))
    finally:
        await conn.close()


@pytest.fixture
async def two_tenants(db: TenancyDb) -> TenancyDb:
    await write(db.app, "acme", 3)
    await write(db.app, "globex", 2)
    return db


async def test_a_tenant_sees_and_counts_only_its_own_events(two_tenants: TenancyDb) -> None:
    db = two_tenants
    assert await scalar(db.app, COUNT, "acme") == 3
    assert await scalar(db.app, COUNT, "globex") == 2
    tenants = "SELECT count(DISTINCT tenant_id) FROM tether_outbox"
    assert await scalar(db.app, tenants, "acme") == 1
    # The relay's role (BYPASSRLS) and the owner see every tenant.
    assert await scalar(db.relay, COUNT) == 5
    assert await scalar(db.admin, COUNT) == 5


async def test_an_unscoped_transaction_sees_nothing(two_tenants: TenancyDb) -> None:
    db = two_tenants
    assert await scalar(db.app, COUNT) == 0
    # An emptied setting (what remains in a session after a scoped transaction) also matches
    # nothing, on the same connection that was scoped a moment ago.
    conn = await asyncpg.connect(db.app)
    try:
        async with conn.transaction():
            await tenant_scope(conn, "acme")
            assert await conn.fetchval(COUNT) == 3
        assert await conn.fetchval(f"SELECT current_setting('{SETTING}', true)") == ""
        async with conn.transaction():
            assert await conn.fetchval(COUNT) == 0
    finally:
        await conn.close()


async def test_writing_another_tenants_row_or_no_tenant_is_refused(db: TenancyDb) -> None:
    conn = await asyncpg.connect(db.app)
    insert = (
        "INSERT INTO tether_outbox (id, tenant_id, topic, type, payload) "
        "VALUES (gen_random_uuid(), $1, 't', 'T', '{}')"
    )
    try:
        for tenant in ("globex", None):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                async with conn.transaction():
                    await tenant_scope(conn, "acme")
                    await conn.execute(insert, tenant)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            async with conn.transaction():
                await conn.execute(insert, "acme")  # no scope at all
    finally:
        await conn.close()
    assert await scalar(db.admin, COUNT) == 0


async def test_a_bad_or_missing_tenant_id_is_refused_before_anything_is_written(
    db: TenancyDb,
) -> None:
    conn = await asyncpg.connect(db.app)
    try:
        async with conn.transaction():
            for bad in ("acme corp", "", "x" * 300, "../etc"):
                with pytest.raises(EventValidationError, match="tenant_id"):
                    await add_event(conn, "OrderPlaced", {}, tenant_id=bad)
                with pytest.raises(EventValidationError, match="tenant_id"):
                    await tenant_scope(conn, bad)
            with pytest.raises(EventValidationError, match="tenant_id is required"):
                await add_event(conn, "OrderPlaced", {})
            # Nothing was sent: the transaction is still usable and unscoped.
            assert await conn.fetchval(f"SELECT current_setting('{SETTING}', true)") is None
    finally:
        await conn.close()
    assert await scalar(db.admin, COUNT) == 0


async def test_replay_and_purge_touch_only_the_scoped_tenants_dead_letters(
    two_tenants: TenancyDb,
) -> None:
    db = two_tenants
    admin = await asyncpg.connect(db.admin)
    await admin.execute("UPDATE tether_outbox SET state = 'dead', finished_at = now()")
    dead = "SELECT count(*) FROM tether_outbox WHERE state = 'dead'"

    async def engine(tenant: str | None) -> tuple[asyncpg.Pool, PostgresQueue]:
        # The admin commands' pool is private to one command, so a session-wide setting is the
        # scope of every statement it runs.
        settings = {SETTING: tenant} if tenant else {}
        pool = await asyncpg.create_pool(db.app, min_size=1, max_size=1, server_settings=settings)
        return pool, PostgresQueue(pool, spec=OUTBOX, queue=None)

    try:
        pool, unscoped = await engine(None)
        assert await unscoped.count() == 0
        assert await unscoped.replay() == 0
        assert await unscoped.purge() == 0
        await pool.close()

        pool, acme = await engine("acme")
        assert await acme.count() == 3
        assert {i.id for i in await acme.list()} == {
            r[0] for r in await admin.fetch("SELECT id FROM tether_outbox WHERE tenant_id='acme'")
        }
        assert await acme.replay() == 3
        assert await admin.fetchval(dead) == 2  # globex's stay dead
        await admin.execute("UPDATE tether_outbox SET state = 'dead' WHERE tenant_id = 'acme'")
        assert await acme.purge() == 3
        await pool.close()
        assert await admin.fetchval(COUNT) == 2
        assert await admin.fetchval("SELECT min(tenant_id) FROM tether_outbox") == "globex"
    finally:
        await admin.close()


async def test_idempotency_keys_are_per_tenant_and_hidden_from_others(db: TenancyDb) -> None:
    await write(db.app, "acme", 1, idempotency_key="order-1")
    await write(db.app, "globex", 1, idempotency_key="order-1")
    await write(db.app, "acme", 1, idempotency_key="order-1")  # a repeat: no new event
    keys = "SELECT count(*) FROM tether_outbox_keys"
    assert await scalar(db.app, keys, "acme") == 1
    assert await scalar(db.app, keys) == 0
    assert await scalar(db.relay, keys) == 2
    assert await scalar(db.app, COUNT, "acme") == 1
    assert await scalar(db.app, COUNT, "globex") == 1


def test_sync_writes_and_scope(two_tenants: TenancyDb) -> None:
    db = two_tenants
    with psycopg.connect(db.app) as conn:
        add_event_sync(conn, "OrderPlaced", {}, tenant_id="initech")
        assert conn.execute(COUNT).fetchone() == (1,)
        conn.commit()
        tenant_scope_sync(conn, "acme")
        assert conn.execute(COUNT).fetchone() == (3,)
        conn.commit()
        assert conn.execute(COUNT).fetchone() == (0,)


async def test_a_transaction_belongs_to_one_tenant(db: TenancyDb) -> None:
    conn = await asyncpg.connect(db.app)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="scoped to tenant acme"):
            async with conn.transaction():
                await tenant_scope(conn, "acme")
                await add_event(conn, "OrderPlaced", {}, tenant_id="globex")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="scoped to tenant acme"):
            async with conn.transaction():
                await add_event(conn, "OrderPlaced", {}, tenant_id="acme")
                await tenant_scope(conn, "globex")
        async with conn.transaction():  # the same tenant again is fine
            await tenant_scope(conn, "acme")
            await add_event(conn, "OrderPlaced", {}, tenant_id="acme", idempotency_key="k")
    finally:
        await conn.close()
    assert await scalar(db.admin, COUNT) == 1


async def test_until_enabled_the_policies_change_nothing() -> None:
    # Upgrading must not break applications without tenants that run as a non-owner role.
    previous = configure(ProducerPolicy())
    try:
        with tenancy_database(enabled=False) as db:
            await write(db.app, "acme", 1)
            conn = await asyncpg.connect(db.app)
            try:
                async with conn.transaction():
                    await add_event(conn, "OrderPlaced", {}, idempotency_key="k")
                    assert await conn.fetchval(COUNT) == 2
            finally:
                await conn.close()
            admin = await asyncpg.connect(db.admin)
            try:
                await admin.execute("SELECT tether_tenancy(true)")
                assert await scalar(db.app, COUNT) == 0
                assert await scalar(db.app, COUNT, "acme") == 1
                await admin.execute("SELECT tether_tenancy(false)")
                assert await scalar(db.app, COUNT) == 2
            finally:
                await admin.close()
    finally:
        configure(previous)
