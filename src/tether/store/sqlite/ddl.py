"""The SQLite schema and its one migrator: numbered files under ``schema/``, every component's.

:func:`migrate` applies the files whose number is above the database's ``PRAGMA user_version``,
each in a transaction of its own that also records its number there: a file is applied whole
or not at all, and running the migrator again is a no-op. The outbox, the work-item engine,
authorization and ``tether migrate`` all migrate through it, on aiosqlite, sqlite3 or an
SQLAlchemy async engine. A new file takes the next number: a number below the highest one
applied is never run on an existing database.
"""

from __future__ import annotations

import sqlite3
from importlib import resources

import aiosqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
    """``(number, script)`` of each file still to apply; the script is the file wrapped in a
    transaction that also sets ``user_version`` to its number."""
    return [
        (n, f"BEGIN;\n{_read(name)}\nPRAGMA user_version = {int(n)};\nCOMMIT;")
        for n, name in schema_files()
        if n > current_version
    ]


async def migrate(target: aiosqlite.Connection | AsyncEngine | AsyncConnection) -> int:
    """Bring the database up to the current schema; returns its version afterwards."""
    if isinstance(target, AsyncEngine):
        async with target.connect() as conn:
            return await migrate(conn)
    if isinstance(target, AsyncConnection):
        raw = await target.get_raw_connection()
        driver = raw.driver_connection
        if not isinstance(driver, aiosqlite.Connection):
            raise TypeError(f"not an SQLite (aiosqlite) engine: {type(driver).__name__}")
        return await migrate(driver)
    async with target.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    for number, script in pending_scripts(version):
        try:
            await target.executescript(script)
        except BaseException:
            await target.rollback()
            raise
        version = number
    return version


def migrate_sync(conn: sqlite3.Connection) -> int:
    """:func:`migrate` for a ``sqlite3`` connection."""
    row = conn.execute("PRAGMA user_version").fetchone()
    version = int(row[0]) if row else 0
    for number, script in pending_scripts(version):
        try:
            conn.executescript(script)
        except BaseException:
            conn.rollback()
            raise
        version = number
    return version
