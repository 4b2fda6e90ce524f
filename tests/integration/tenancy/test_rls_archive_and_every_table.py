"""Row-level security on the outbox archive, and the fail-closed rule on every table with a
tenant policy: a session scoped to tenant A reads, counts, copies back (replays) and deletes
none of tenant B's archived events; an unscoped session sees no row of any tenant table;
``tether_tenancy()`` switches exactly the tables with a policy; a database where tenancy was
on before migration 0008 (0014) has it on for the archive and the grants (jobs, webhooks)
after it; the jobs' operator tables are not the application role's."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import psycopg
import pytest

from tests.support import pg
from tests.support.tenancy import OPERATOR, TABLES, TenancyDb, tenancy_database
from tether.store import migrations
from tether.tenancy import tenant_scope

pytestmark = pytest.mark.timeout(60)

# One row of each tenant table for a tenant, as the owner writes it ({t}: the tenant).
SEED = (
    "INSERT INTO tether_outbox (id, tenant_id, topic, type, payload)"
    " VALUES (gen_random_uuid(), '{t}', 'orders', 'OrderPlaced', '{{}}')",
    "INSERT INTO tether_outbox_keys (key, event_id, tenant_id) VALUES ('k-{t}', gen_random_uuid(), '{t}')",
    "INSERT INTO tether_idempotency (scope_key, fingerprint, state, lease_token,"
    " lease_expires_at, expires_at, tenant_id)"
    " VALUES ('s-{t}', 'f', 'in_flight', 'l', now(), now() + interval '1 day', '{t}')",
    "INSERT INTO tether_items (id, queue, payload, tenant_id)"
    " VALUES (gen_random_uuid(), 'q', '{{}}', '{t}')",
    "INSERT INTO tether_outbox_archive (seq, id, attempts, created_at, finished_at, done_sinks,"
    " errors, tenant_id, topic, type, version, source, payload) VALUES (1, gen_random_uuid(), 1,"
    " now(), now(), '{{}}', '[]', '{t}', 'orders', 'OrderPlaced', 1, 'test', '{{}}')",
    "INSERT INTO tether_authz_orgs (id) VALUES ('{t}')",
    "INSERT INTO tether_authz_user_roles (user_id, org_id, role) VALUES ('asha', '{t}', 'trader')",
    "INSERT INTO tether_authz_user_capabilities (user_id, org_id, capability)"
    " VALUES ('asha', '{t}', 'trade:view')",
    "INSERT INTO tether_jobs (id, queue, name, payload, tenant_id)"
    " VALUES (gen_random_uuid(), 'default', 'send', '{{}}', '{t}')",
    "INSERT INTO tether_webhook_endpoints (id, tenant_id, url, filters, secrets, created_at,"
    " updated_at) VALUES (md5('{t}')::uuid, '{t}', 'https://example.com/{t}', '{{}}', '{{}}',"
    " now(), now())",
    "INSERT INTO tether_webhook_deliveries (id, queue, available_at, created_at, payload,"
    " tenant_id, endpoint_id, event_id, event_type) VALUES (gen_random_uuid(), 'medium', now(),"
    " now(), '{{}}', '{t}', md5('{t}')::uuid, gen_random_uuid(), 'OrderPlaced')",
    "INSERT INTO tether_webhook_attempts (delivery_id, endpoint_id, tenant_id, event_id,"
    " attempt, at, outcome) VALUES (gen_random_uuid(), md5('{t}')::uuid, '{t}',"
    " gen_random_uuid(), 1, now(), 'ok')",
)
ARCHIVE = "SELECT count(*) FROM tether_outbox_archive"


@pytest.fixture(scope="module")
def db() -> Iterator[TenancyDb]:
    """Every tenant table holds one row of acme and one of globex (archive: 2 of acme)."""
    with tenancy_database() as created:
        with psycopg.connect(created.admin, autocommit=True) as conn:
            conn.execute("INSERT INTO tether_authz_users (id) VALUES ('asha')")
            conn.execute("INSERT INTO tether_authz_capabilities (name) VALUES ('trade:view')")
            conn.execute("INSERT INTO tether_authz_roles (name) VALUES ('trader')")
            for tenant in ("acme", "globex"):
                for sql in SEED:
                    conn.execute(sql.format(t=tenant))  # type: ignore[arg-type]
            conn.execute(SEED[4].format(t="acme"))  # type: ignore[arg-type]
        yield created


async def fetchval(dsn: str, sql: str, tenant: str | None = None) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            if tenant is not None:
                await tenant_scope(conn, tenant)
            return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_every_tenant_table_fails_closed_and_shows_one_tenant_when_scoped(
    db: TenancyDb,
) -> None:
    app, relay = await asyncpg.connect(db.app), await asyncpg.connect(db.relay)

    async def count(table: str, tenant: str | None = None) -> int:
        async with app.transaction():
            if tenant is not None:
                await tenant_scope(app, tenant)
            return int(await app.fetchval(f"SELECT count(*) FROM {table}"))

    try:
        for table in TABLES:
            mine = 2 if table == "tether_outbox_archive" else 1
            assert await count(table) == 0, f"{table} is open without a tenant"
            assert await count(table, "acme") == mine, table
            assert await count(table, "globex") == 1, table
            assert await relay.fetchval(f"SELECT count(*) FROM {table}") == mine + 1, table
    finally:
        await app.close()
        await relay.close()


async def test_tether_tenancy_switches_exactly_the_tables_with_a_policy(db: TenancyDb) -> None:
    conn = await asyncpg.connect(db.admin)
    try:
        with_policy = {
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_policies WHERE policyname = 'tether_tenant_isolation'"
            )
        }
        switched = {
            r["relname"]
            for r in await conn.fetch("SELECT relname FROM pg_class WHERE relrowsecurity")
        }
    finally:
        await conn.close()
    assert with_policy == set(TABLES)
    assert switched == set(TABLES)


async def test_a_tenant_reads_replays_and_purges_only_its_archived_events(db: TenancyDb) -> None:
    assert await fetchval(db.app, ARCHIVE, "acme") == 2
    assert await fetchval(db.app, ARCHIVE, "globex") == 1
    conn = await asyncpg.connect(db.app)
    try:
        # Everything below is rolled back: the module's database stays as seeded.
        tx = conn.transaction()
        await tx.start()
        await tenant_scope(conn, "acme")
        replayed = await conn.fetch(
            "INSERT INTO tether_outbox (id, tenant_id, topic, type, payload)"
            " SELECT gen_random_uuid(), tenant_id, topic, type, payload"
            " FROM tether_outbox_archive RETURNING tenant_id"
        )
        assert [r["tenant_id"] for r in replayed] == ["acme", "acme"]
        purged = await conn.fetch("DELETE FROM tether_outbox_archive RETURNING tenant_id")
        assert [r["tenant_id"] for r in purged] == ["acme", "acme"]
        await tx.rollback()
        # Writing another tenant's archived row is refused.
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            async with conn.transaction():
                await tenant_scope(conn, "acme")
                await conn.execute(SEED[4].format(t="globex"))
        # The months are tables of their own, granted to nobody: no way around the parent.
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.fetchval("SELECT count(*) FROM tether_outbox_archive_default")
    finally:
        await conn.close()
    assert await fetchval(db.relay, ARCHIVE) == 3


@pytest.mark.parametrize(("before", "after", "new"), [("0007", "0008", 8), ("0013", "0014", 12)])
def test_upgrading_a_database_with_tenancy_on_turns_it_on_for_the_new_tables(
    before: str, after: str, new: int
) -> None:
    with pg.fresh_database(template="template0") as dsn:
        migrations.upgrade(dsn, before)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT tether_tenancy(true)")
        migrations.upgrade(dsn, after)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT relname FROM pg_class WHERE relrowsecurity AND relname = ANY(%s)",
                (list(TABLES),),
            ).fetchall()
        assert {r[0] for r in rows} == set(TABLES[:new])


async def test_cron_ticks_and_recovery_counts_are_not_the_application_roles(
    db: TenancyDb,
) -> None:
    conn = await asyncpg.connect(db.app)
    try:
        for table in OPERATOR:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await conn.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await conn.close()
