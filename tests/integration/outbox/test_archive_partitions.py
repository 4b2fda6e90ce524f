"""The month-partitioned outbox archive on PostgreSQL: settling moves published rows into it,
months are created ahead (idempotently, taking their rows out of the default partition) and
retention drops whole months, never one that still holds a row newer than the policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tether.core.errors import ConfigError
from tether.outbox import add_event, partitions
from tether.outbox.retention import RetentionPolicy, run_once
from tether.outbox.store_pg import PostgresOutboxStore
from tether.outbox.table import OUTBOX
from tether.queue.postgres import PostgresQueue

NOW = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(pg_dsn)
    try:
        yield c
    finally:
        await c.close()


async def _months(conn: asyncpg.Connection) -> list[str]:
    return sorted(await partitions.existing_partitions(conn))


async def _archive_row(conn: asyncpg.Connection, finished_at: datetime) -> None:
    await conn.execute(
        """INSERT INTO tether_outbox_archive (seq, id, attempts, created_at, finished_at,
               done_sinks, errors, topic, type, version, source, payload)
           VALUES (1, gen_random_uuid(), 1, $1, $1, '{}', '[]', 't', 'E', 1, 's', '{}')""",
        finished_at,
    )


async def test_months_are_created_ahead_once(conn: asyncpg.Connection) -> None:
    created = await partitions.ensure_partitions(conn, ahead=2, now=NOW)
    assert created == [
        "tether_outbox_archive_y2026m12",
        "tether_outbox_archive_y2027m01",
        "tether_outbox_archive_y2027m02",
    ]
    assert await partitions.ensure_partitions(conn, ahead=2, now=NOW) == []
    assert await partitions.ensure_partitions(conn, ahead=3, now=NOW) == [
        "tether_outbox_archive_y2027m03"
    ]
    # A row lands in its month, not in the default partition.
    await _archive_row(conn, datetime(2027, 1, 31, 23, 59, tzinfo=UTC))
    assert await conn.fetchval("SELECT count(*) FROM tether_outbox_archive_y2027m01") == 1
    assert await conn.fetchval("SELECT count(*) FROM tether_outbox_archive_default") == 0


async def test_a_month_created_late_takes_its_rows_from_the_default(
    conn: asyncpg.Connection,
) -> None:
    await _archive_row(conn, datetime(2026, 12, 3, tzinfo=UTC))
    await _archive_row(conn, datetime(2027, 5, 3, tzinfo=UTC))
    assert await conn.fetchval("SELECT count(*) FROM tether_outbox_archive_default") == 2
    await partitions.ensure_partitions(conn, ahead=0, now=NOW)
    assert await conn.fetchval("SELECT count(*) FROM tether_outbox_archive_y2026m12") == 1
    assert await conn.fetchval("SELECT count(*) FROM tether_outbox_archive_default") == 1
    assert await conn.fetchval("SELECT count(*) FROM tether_outbox_archive") == 2


async def test_retention_drops_only_months_older_than_the_policy(
    conn: asyncpg.Connection,
) -> None:
    await partitions.ensure_partitions(conn, ahead=0, now=datetime(2026, 9, 1, tzinfo=UTC))
    await partitions.ensure_partitions(conn, ahead=3, now=datetime(2026, 10, 1, tzinfo=UTC))
    await _archive_row(conn, datetime(2026, 9, 30, 23, 0, tzinfo=UTC))
    await _archive_row(conn, datetime(2026, 11, 20, tzinfo=UTC))
    # Cut-off 2026-11-15: September and October end before it; November holds a newer row.
    report = await partitions.drop_expired(conn, timedelta(days=30), now=NOW)
    assert report.dropped == ("tether_outbox_archive_y2026m09", "tether_outbox_archive_y2026m10")
    assert await _months(conn) == [
        "tether_outbox_archive_y2026m11",
        "tether_outbox_archive_y2026m12",
        "tether_outbox_archive_y2027m01",
    ]
    assert await conn.fetchval("SELECT count(*) FROM tether_outbox_archive") == 1
    again = await partitions.drop_expired(conn, timedelta(days=30), now=NOW)
    assert again == partitions.DropReport((), 0)


async def test_retention_deletes_old_rows_of_the_default_partition(
    conn: asyncpg.Connection,
) -> None:
    await _archive_row(conn, datetime(2026, 1, 1, tzinfo=UTC))
    await _archive_row(conn, NOW - timedelta(days=1))
    report = await partitions.drop_expired(conn, timedelta(days=7), now=NOW)
    assert report == partitions.DropReport((), 1)
    assert await conn.fetchval("SELECT count(*) FROM tether_outbox_archive_default") == 1


async def test_bad_arguments_are_refused(conn: asyncpg.Connection) -> None:
    with pytest.raises(ConfigError, match="ahead"):
        await partitions.ensure_partitions(conn, ahead=-1)
    with pytest.raises(ConfigError, match="negative"):
        await partitions.drop_expired(conn, timedelta(days=-1))
    with pytest.raises(ConfigError, match="time zone"):
        partitions.month_start(datetime(2026, 1, 1))
    with pytest.raises(ConfigError, match="keep_published"):
        await PostgresOutboxStore.connect("postgresql://unused", archive=True)


async def test_settling_moves_published_rows_into_the_archive(
    pg_dsn: str, conn: asyncpg.Connection
) -> None:
    await partitions.ensure_partitions(conn, ahead=1)
    async with conn.transaction():
        for n in range(5):
            await add_event(conn, "E", {"n": n}, aggregate_type="o", aggregate_id=f"k{n % 2}")
    store = await PostgresOutboxStore.connect(pg_dsn, keep_published=True, archive=True)
    try:
        async with store.claim(10) as batch:
            assert len(batch.events) == 5
            await batch.settle([e.seq for e in batch.events[:3]], [])
    finally:
        await store.close()
    rows = await conn.fetch(
        "SELECT payload->>'n' AS n, attempts, finished_at, partition_key "
        "FROM tether_outbox_archive ORDER BY seq"
    )
    assert [r["n"] for r in rows] == ["0", "1", "2"]
    assert all(r["attempts"] == 1 and r["finished_at"] is not None for r in rows)
    assert rows[0]["partition_key"] == rows[2]["partition_key"] != rows[1]["partition_key"]
    assert await conn.fetchval("SELECT count(*) FROM tether_outbox_archive_default") == 0
    hot = await conn.fetch("SELECT payload->>'n' AS n, state FROM tether_outbox ORDER BY seq")
    assert [(r["n"], r["state"]) for r in hot] == [("3", "pending"), ("4", "pending")]


async def test_run_once_drops_archive_months(pg_dsn: str, conn: asyncpg.Connection) -> None:
    old = datetime.now(UTC) - timedelta(days=120)
    await partitions.ensure_partitions(conn, ahead=0, now=old)
    await _archive_row(conn, old)
    admin = await PostgresQueue.connect(pg_dsn, spec=OUTBOX, queue=None)
    try:
        async with conn.transaction():
            report = await run_once(
                admin, conn, RetentionPolicy(published=timedelta(days=30)), archive=True
            )
    finally:
        await admin.close()
    assert report.archived_months == (partitions.partition_name(partitions.month_start(old)),)
    assert await conn.fetchval("SELECT count(*) FROM tether_outbox_archive") == 0
