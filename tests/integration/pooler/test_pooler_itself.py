"""The tier proves something only if the pooler really breaks session-bound clients.

These checks fail if PgBouncer ran in session mode, ignored startup parameters, or gave every
client a server connection of its own, so the other tests here cannot pass vacuously.
"""

from __future__ import annotations

import asyncio

import asyncpg
import psycopg
import pytest

from tests.integration.pooler.conftest import Pooler
from tests.support import services
from tether.store.drivers import NotInTransactionError
from tether.store.postgres import pooler as pooler_mode

pytestmark = pytest.mark.postgres


def test_pgbouncer_runs_in_transaction_mode_with_default_parameters(pooler: Pooler) -> None:
    admin = pooler.dsn(services.PG_ADMIN_DSN).rsplit("/", 1)[0] + "/pgbouncer"
    with psycopg.connect(admin, autocommit=True) as conn:
        config = {row[0]: row[1] for row in conn.execute("SHOW CONFIG", prepare=False).fetchall()}
    assert config["pool_mode"] == "transaction"
    assert config["ignore_startup_parameters"] == ""


async def test_session_settings_at_startup_are_refused(pooled_dsn: str) -> None:
    with pytest.raises(asyncpg.PostgresError, match="unsupported startup parameter"):
        await asyncpg.connect(pooled_dsn, server_settings={"plan_cache_mode": "force_custom_plan"})


async def test_named_prepared_statements_fail_through_it(pooled_dsn: str) -> None:
    # asyncpg's defaults: the failure users see behind a transaction pooler.
    pool = await asyncpg.create_pool(pooled_dsn, min_size=4, max_size=4)
    try:
        results = await asyncio.gather(
            *(_one_transaction(pool, n) for n in range(100)), return_exceptions=True
        )
    finally:
        await pool.close()
    failures = [r for r in results if isinstance(r, Exception)]
    assert failures, "every transaction succeeded: the pooler is not sharing server sessions"
    assert any("prepared statement" in str(f) for f in failures)


async def test_the_pooler_mode_connects_and_runs_every_transaction(pooled_dsn: str) -> None:
    options = pooler_mode.connect_kwargs("transaction", {"application_name": "tether-test"})
    pool = await asyncpg.create_pool(pooled_dsn, min_size=4, max_size=4, **options)
    try:
        await asyncio.gather(*(_one_transaction(pool, n) for n in range(100)))
    finally:
        await pool.close()


async def test_apply_local_lasts_one_transaction(pooled_dsn: str) -> None:
    conn = await asyncpg.connect(pooled_dsn, **pooler_mode.connect_kwargs("transaction"))
    try:
        local = pooler_mode.local_settings(
            "transaction", {"enable_bitmapscan": "off", "plan_cache_mode": "force_custom_plan"}
        )
        assert local == {"enable_bitmapscan": "off"}
        async with conn.transaction():
            await pooler_mode.apply_local(conn, local)
            assert await conn.fetchval("SHOW enable_bitmapscan") == "off"
        assert await conn.fetchval("SHOW enable_bitmapscan") == "on"
        with pytest.raises(NotInTransactionError):
            await pooler_mode.apply_local(conn, local)
    finally:
        await conn.close()


async def _one_transaction(pool: asyncpg.Pool, n: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        assert await conn.fetchval("SELECT $1::int + 1", n) == n + 1
        assert await conn.fetchval("SELECT count(*) FROM tether_outbox WHERE seq > $1", n) == 0


def test_psycopg_prepared_statements_fail_through_it(pooled_dsn: str) -> None:
    # psycopg prepares a statement after five runs; the next transaction may get another
    # server session, which never saw it. A second client holding the first session forces it.
    with psycopg.connect(pooled_dsn) as producer, psycopg.connect(pooled_dsn) as other:
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            for n in range(10):
                with producer.transaction():
                    producer.execute("SELECT %s::int", (n,)).fetchone()
                if n % 2:
                    other.commit()
                else:
                    other.execute("SELECT 1")


def test_psycopg_without_prepared_statements_works_through_it(pooled_dsn: str) -> None:
    kwargs = pooler_mode.psycopg_kwargs("transaction")
    with psycopg.connect(pooled_dsn, **kwargs) as producer, psycopg.connect(pooled_dsn) as other:
        pids = set()
        for n in range(10):
            with producer.transaction():
                assert producer.execute("SELECT %s::int", (n,)).fetchone() == (n,)
                pids.add(producer.execute("SELECT pg_backend_pid()").fetchone())
            if n % 2:
                other.commit()
            else:
                other.execute("SELECT 1")
    assert len(pids) > 1, "every transaction ran in one server session"
