"""Outbox retention on PostgreSQL: old done rows, old dead letters and old keys go; the rest stay."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from tether.outbox import add_event
from tether.outbox.retention import RetentionPolicy, run_once
from tether.outbox.table import OUTBOX
from tether.queue.postgres import PostgresQueue


async def test_retention_pass(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    admin = await PostgresQueue.connect(pg_dsn, spec=OUTBOX, queue=None)
    try:
        async with conn.transaction():
            for n in range(6):
                await add_event(conn, "E", {"n": n}, idempotency_key=f"k{n}")
        await conn.execute(
            """UPDATE tether_outbox SET state = CASE WHEN (payload->>'n')::int < 3 THEN 'done' ELSE 'dead' END,
                      finished_at = now() - CASE WHEN (payload->>'n')::int % 3 = 0 THEN interval '1 hour' ELSE interval '40 days' END"""
        )
        await conn.execute(
            "UPDATE tether_outbox_keys SET created_at = now() - interval '8 days' WHERE key IN ('k0', 'k1')"
        )
        async with conn.transaction():
            report = await run_once(
                admin, conn, RetentionPolicy(published=timedelta(days=1), dead=timedelta(days=30))
            )
        assert (report.published, report.dead, report.idempotency_keys) == (2, 2, 2)
        left = await conn.fetch("SELECT payload->>'n' AS n FROM tether_outbox ORDER BY seq")
        assert [r["n"] for r in left] == ["0", "3"]
        async with conn.transaction():
            forever = await run_once(
                admin, conn, RetentionPolicy(published=timedelta(0), dead=None)
            )
        assert (forever.published, forever.dead) == (1, 0)
    finally:
        await admin.close()
        await conn.close()
