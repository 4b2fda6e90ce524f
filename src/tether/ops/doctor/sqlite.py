"""The database checks on SQLite: the file opens, its schema version, tables and indexes, dead
letters and the oldest pending event. The rest (NOTIFY, autovacuum, clock skew, the relay's
sessions) is PostgreSQL's only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiosqlite

from tether.ops.doctor import expected
from tether.ops.doctor.check import Result, fail, ok, warn
from tether.store.sqlfile import queries

_Q = queries("tether.ops.doctor", "sqlite")


def query(name: str) -> str:
    return _Q[name].sql


async def _rows(conn: aiosqlite.Connection, name: str, *args: Any) -> list[Any]:
    async with conn.execute(query(name), args) as cursor:
        return list(await cursor.fetchall())


async def reachable(conn: aiosqlite.Connection) -> Result:
    async with conn.execute("SELECT sqlite_version()") as cursor:
        row = await cursor.fetchone()
    return ok("database reachable", f"SQLite {row[0] if row else '?'}")


async def migrations_current(conn: aiosqlite.Connection) -> Result:
    name = "migrations current"
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    at, want = int(row[0]) if row else 0, expected.sqlite_version()
    if at != want:
        return fail(
            name, f"schema version {at}, this Tether expects {want}", "run `tether migrate`"
        )
    return ok(name, f"schema version {at}")


async def schema(conn: aiosqlite.Connection) -> list[Result]:
    found = {r[0]: r[1] for r in await _rows(conn, "relations")}
    want = expected.sqlite()
    missing_tables = [t for t in want.tables if found.get(t) != "table"]
    missing_indexes = [i.name for i in want.indexes if found.get(i.name) != "index"]
    fix = "run `tether migrate`"
    return [
        fail("tables", f"missing: {', '.join(missing_tables)}", fix)
        if missing_tables
        else ok("tables", f"all {len(want.tables)} present"),
        fail("indexes", f"missing: {', '.join(missing_indexes)}", fix)
        if missing_indexes
        else ok("indexes", f"all {len(want.indexes)} present"),
    ]


async def dead_letters(conn: aiosqlite.Connection) -> Result:
    (backlog,) = await _rows(conn, "backlog")
    items = await _rows(conn, "dead_items")
    outbox = int(backlog[0] or 0)
    total = outbox + sum(int(r[1]) for r in items)
    if total:
        parts = [f"outbox {outbox}"] + [f"queue {r[0]} {r[1]}" for r in items]
        return warn(
            "dead letters",
            ", ".join(parts),
            "inspect with `tether dlq list`, then `tether dlq replay` once the cause is fixed",
        )
    return ok("dead letters", "none")


async def oldest_pending(
    conn: aiosqlite.Connection, warn_after: float, fail_after: float
) -> Result:
    name = "oldest pending"
    (backlog,) = await _rows(conn, "backlog")
    if backlog[1] is None:
        return ok(name, "nothing pending")
    age = (datetime.fromisoformat(backlog[2]) - datetime.fromisoformat(backlog[1])).total_seconds()
    detail = f"{max(age, 0.0):.1f}s old"
    fix = "see `tether status`: is the relay running, and are its sinks up?"
    if age > fail_after:
        return fail(name, detail, fix)
    if age > warn_after:
        return warn(name, detail, fix)
    return ok(name, detail)
