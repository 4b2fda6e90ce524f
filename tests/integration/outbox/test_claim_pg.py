"""The claim on PostgreSQL beside another relay: rows another transaction has locked are seen as
held (and never tried), and the next claim reads past them in one window."""

from __future__ import annotations

import asyncpg

from tether.outbox import add_event
from tether.outbox.store_pg import PostgresOutboxStore, _Source


async def _produce(conn: asyncpg.Connection, key: str, n: int) -> None:
    async with conn.transaction():
        for i in range(n):
            await add_event(conn, "Step", {"i": i}, aggregate_type="order", aggregate_id=key)


async def test_rows_another_relay_holds_are_seen_as_held_and_skipped(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    other = await asyncpg.connect(pg_dsn)
    store = await PostgresOutboxStore.connect(pg_dsn)
    try:
        await _produce(conn, "A", 3)
        await _produce(conn, "B", 3)
        async with other.transaction():
            # Another relay holds key A's head and the row behind it.
            await other.fetch(
                "SELECT seq FROM tether_outbox WHERE aggregate_id = 'A' "
                "ORDER BY seq LIMIT 2 FOR UPDATE"
            )
            async with conn.transaction():
                peeks = await _Source(conn).walk(0, 10)  # type: ignore[arg-type]
            assert [(p.key, p.held) for p in peeks] == [
                ("order:A", True), ("order:A", True), ("order:A", False),
                ("order:B", False), ("order:B", False), ("order:B", False),
            ]  # fmt: skip
            async with store.claim(10, run=1) as batch:
                got = [c.event.aggregate_id for c in batch.events]
            assert got == ["B", "B", "B"]  # nothing of A: its head is held elsewhere
            assert store._held == 2  # the next claim reads two rows further at once
    finally:
        await store.close()
        await other.close()
        await conn.close()
