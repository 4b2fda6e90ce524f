"""The SQLite schema mirrors the PostgreSQL one and migrates idempotently."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from pathlib import Path

import aiosqlite

from tether.outbox import producer
from tether.outbox.table import OUTBOX
from tether.queue import ItemFilter
from tether.queue.spec import ITEMS, render
from tether.queue.sqlite import SqliteQueue, open_database
from tether.store.sqlite import ddl

TABLES = ("tether_outbox", "tether_outbox_keys", "tether_inbox", "tether_items")


def pg_columns(table: str) -> list[str]:
    sql = resources.files("tether.store.postgres").joinpath("schema/010_outbox.sql").read_text()
    body = re.search(rf"CREATE TABLE {table} \((.*?)\n\);", sql, re.S)
    assert body is not None
    names = []
    for line in body.group(1).splitlines():
        m = re.match(
            r"\s+([a-z_]+)\s+(bigint|uuid|text|integer|timestamptz|jsonb|json|text\[\])\b", line
        )
        if m:
            names.append(m.group(1))
    return names


def test_every_table_has_the_postgres_columns_in_order(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    ddl.migrate_sync(conn)
    for table in TABLES:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        assert columns == pg_columns(table), table
    conn.close()


async def test_migrate_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    conn = await open_database(path)
    assert await ddl.migrate(conn) == ddl.schema_files()[-1][0]  # already there: nothing to do
    await conn.execute("INSERT INTO tether_items (id, queue, payload) VALUES ('a', 'q', '{}')")
    await conn.close()
    conn = await open_database(path)  # opening again migrates again, harmlessly
    assert next(iter(await conn.execute_fetchall("SELECT count(*) FROM tether_items")))[0] == 1
    assert next(iter(await conn.execute_fetchall("PRAGMA journal_mode")))[0] == "wal"
    await conn.close()


async def test_add_event_rows_are_served_by_the_outbox_admin(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    await (await open_database(path)).close()  # creates the schema
    async with aiosqlite.connect(str(path), isolation_level=None) as conn:
        await conn.execute("BEGIN")
        ref = await producer.add_event(
            conn, "OrderPlaced", {"total": 3}, aggregate_type="order", aggregate_id="7"
        )
        await conn.execute("COMMIT")
    outbox = await SqliteQueue.connect(path, spec=OUTBOX, queue=None)
    [item] = await outbox.list(ItemFilter(extra={"type": "OrderPlaced"}))
    assert (item.id, item.payload, item.partition_key) == (ref.id, {"total": 3}, "order:7")
    assert (await outbox.stats()).pending == 1
    await outbox.close()


def test_a_dead_item_is_read_by_id_through_an_index(tmp_path: Path) -> None:
    # `tether dlq show` on SQLite: the outbox's id index covers finished rows only.
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    ddl.migrate_sync(conn)
    for spec, index in (
        (OUTBOX, "tether_outbox_finished_id"),
        (ITEMS, "sqlite_autoindex_tether_items"),
    ):
        sql = render("sqlite", "get_dead", spec).sql
        plan = " ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", {"id": "x"}))
        assert f"USING INDEX {index}" in plan, plan
    conn.close()
