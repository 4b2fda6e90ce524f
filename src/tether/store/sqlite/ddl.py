"""The SQLite schema and its migration: one file per component under ``schema/``.

``migrate`` applies the files whose number is above the database's ``PRAGMA user_version``
and records the highest one there, so running it again is a no-op. The DDL also uses
``IF NOT EXISTS``, so a database created by hand from ``full_schema_sql()`` migrates cleanly.
"""

from __future__ import annotations

import sqlite3
from importlib import resources

import aiosqlite

_PACKAGE = "tether.store.sqlite"

# Per-connection settings: WAL lets readers run beside the one writer; busy_timeout makes a
# second connection wait for the write lock instead of failing at once.
PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 5000",
)


def schema_files() -> list[tuple[int, str]]:
    folder = resources.files(_PACKAGE).joinpath("schema")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(int(name.split("_", 1)[0]), name) for name in names]


def _read(name: str) -> str:
    return resources.files(_PACKAGE).joinpath("schema").joinpath(name).read_text()


def full_schema_sql() -> str:
    return "\n".join(_read(name) for _, name in schema_files())


def pending_scripts(current_version: int) -> list[tuple[int, str]]:
    return [(n, _read(name)) for n, name in schema_files() if n > current_version]


async def migrate(conn: aiosqlite.Connection) -> int:
    """Bring the database up to the current schema; returns its version afterwards."""
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    for number, script in pending_scripts(version):
        # executescript commits first and runs the whole file; the version is set after it.
        await conn.executescript(f"{script}\nPRAGMA user_version = {int(number)};")
        version = number
    return version


def migrate_sync(conn: sqlite3.Connection) -> int:
    """:func:`migrate` for a ``sqlite3`` connection."""
    row = conn.execute("PRAGMA user_version").fetchone()
    version = int(row[0]) if row else 0
    for number, script in pending_scripts(version):
        conn.executescript(f"{script}\nPRAGMA user_version = {int(number)};")
        version = number
    return version
