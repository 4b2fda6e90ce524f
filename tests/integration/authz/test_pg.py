"""Grants on PostgreSQL: outbox event and notification in the caller's transaction, fallback."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tether.authz import Authz, InvalidationWatcher, SqlAuthzStore, listen_dsn_of
from tether.store.migrations import read_sql
from tether.store.postgres import ddl as schema


async def wait_until_denied(authz: Authz, user: str, cap: str, org: str) -> float:
    """Seconds until ``has`` turns False; bounded at 5 s."""
    start = time.monotonic()
    while await authz.has(user, cap, org):
        assert time.monotonic() - start < 5, "never denied"
        await asyncio.sleep(0.005)
    return time.monotonic() - start


async def outbox_rows(store: SqlAuthzStore) -> list[tuple[str, str, str, str]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT type, aggregate_type, aggregate_id, tenant_id FROM tether_outbox ORDER BY seq"
            )
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_grant_in_the_callers_session_commits_with_it_event_included(writer: Authz) -> None:
    store = writer.store
    assert isinstance(store, SqlAuthzStore)
    async with AsyncSession(store.engine) as session:
        async with session.begin():
            await writer.grant("alice", "trade:view", "acme", session=session)
            await session.rollback()
    assert not await writer.has("alice", "trade:view", "acme")
    assert await outbox_rows(store) == []

    async with AsyncSession(store.engine) as session, session.begin():
        await writer.grant("alice", "trade:view", "acme", session=session)
    assert await writer.has("alice", "trade:view", "acme")
    await writer.revoke("alice", "trade:view", "acme")
    assert await outbox_rows(store) == [
        ("tether.capability.granted", "user", "alice", "acme"),
        ("tether.capability.revoked", "user", "alice", "acme"),
    ]


async def test_notification_is_sent_on_commit_only(writer: Authz, pg_dsn: str) -> None:
    received: list[str] = []
    conn = await asyncpg.connect(pg_dsn)
    await conn.add_listener("tether_authz", lambda *args: received.append(args[3]))
    try:
        store = writer.store
        assert isinstance(store, SqlAuthzStore)
        async with AsyncSession(store.engine) as session, session.begin():
            await writer.grant("bob", "trade:view", "acme", session=session)
            await asyncio.sleep(0.05)  # give a wrongly early notification time to show up
            assert received == []
        deadline = time.monotonic() + 2
        while not received and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert received == ["bob"]
    finally:
        await conn.close()


async def test_listener_drop_falls_back_to_version_polling(writer: Authz, reader: Authz) -> None:
    assert reader.cache is not None
    watcher = InvalidationWatcher(
        reader.store, reader.cache, listen_dsn=listen_dsn_of(reader.store), interval=0.1
    )
    await watcher.start()
    try:
        assert watcher.listening
        await writer.grant("alice", "trade:approve", "acme")
        await writer.grant("bob", "trade:approve", "acme")
        # Through LISTEN: only alice's entry goes.
        assert await reader.has("alice", "trade:approve", "acme")
        assert await reader.has("bob", "trade:approve", "acme")
        await writer.revoke("alice", "trade:approve", "acme")
        assert await wait_until_denied(reader, "alice", "trade:approve", "acme") < 1.0
        # Kill the listening connection server-side, then revoke: the version poll catches it.
        async with writer.store.engine.connect() as conn:  # type: ignore[attr-defined]
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%' "
                    "AND pid <> pg_backend_pid()"
                )
            )
        await writer.revoke("bob", "trade:approve", "acme")
        assert await wait_until_denied(reader, "bob", "trade:approve", "acme") < 1.0
    finally:
        await watcher.stop()


async def test_expiry_boundary_with_the_real_clock_and_database(writer: Authz) -> None:
    expiry = writer.clock.now() + timedelta(seconds=1)
    await writer.grant("alice", "trade:view", "acme", expires_at=expiry)
    loaded = await writer.store.load_grants("alice")
    assert loaded[0].expires_at == expiry  # microsecond-exact round trip through timestamptz


def test_frozen_migration_matches_the_schema_file() -> None:
    from importlib import resources

    current = resources.files("tether.store.postgres").joinpath("schema", "030_authz.sql")
    assert read_sql("0003_authz.sql") == current.read_text()
    assert "030_authz.sql" in schema.schema_files()


def test_alembic_revision_0003_creates_the_authz_tables(empty_pg_dsn: str) -> None:
    import psycopg

    from tether.store import migrations

    migrations.upgrade(empty_pg_dsn, "0003")
    with psycopg.connect(empty_pg_dsn) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'tether_authz_%'"
            )
        }
        assert conn.execute("SELECT value FROM tether_authz_version").fetchone() == (0,)
    assert len(tables) == 8
    migrations.downgrade(empty_pg_dsn, "0001")
