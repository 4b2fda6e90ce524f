"""``tether migrate``: create or upgrade Tether's tables in the configured database."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import aiosqlite
import typer

from tether.commands import common
from tether.config import Database
from tether.core.errors import ConfigError, TetherError


def migrate_postgres(db: Database, *, stamp: bool = False) -> list[str]:
    """Upgrade to every head (components live on separate Alembic branches); return them.

    ``stamp`` records the heads without running them, for a schema installed from the plain
    SQL file."""
    import psycopg
    from alembic import command
    from sqlalchemy.exc import ProgrammingError

    from tether.store import migrations
    from tether.store.postgres import pooler

    # Alembic logs each revision at INFO through the root logger; the summary line is enough.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        if stamp:
            command.stamp(migrations.config(db.url), "heads")
        else:
            migrations.upgrade(db.url, "heads")
    except ProgrammingError as exc:
        if type(exc.orig).__name__ != "DuplicateTable":
            raise
        raise TetherError(
            f"{db.masked}: Tether's tables exist but no migration is recorded (installed from "
            f"the plain SQL file?): {str(exc.orig).strip()}. If the schema is current, record it "
            "with `tether migrate --stamp`"
        ) from None
    table = migrations.VERSION_TABLE
    with psycopg.connect(db.url, **pooler.psycopg_kwargs(db.pooler)) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        rows = cur.execute(f"SELECT version_num FROM {table} ORDER BY 1").fetchall()
    return [str(r["version_num"]) for r in rows]


async def migrate_sqlite(db: Database) -> int:
    from tether.store.sqlite.ddl import PRAGMAS, migrate

    assert db.sqlite_path is not None
    if db.sqlite_path.parent != db.sqlite_path and not db.sqlite_path.parent.exists():
        raise ConfigError(
            f"SQLite database {str(db.sqlite_path)!r}: folder "
            f"{str(db.sqlite_path.parent)!r} does not exist"
        )
    conn = await aiosqlite.connect(str(db.sqlite_path), isolation_level=None)
    try:
        for pragma in PRAGMAS:
            await conn.execute(pragma)
        return await migrate(conn)
    finally:
        await conn.close()


def migrate(
    *,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
    stamp: Annotated[
        bool,
        typer.Option(
            "--stamp",
            help="PostgreSQL: record the schema as current without running migrations "
            "(for tables created from the plain SQL file).",
        ),
    ] = False,
) -> None:
    """Create or upgrade Tether's tables (outbox, inbox, work items, ...). Safe to re-run."""
    cfg = common.settings(config, {"database_url": (database_url, "--database-url")})
    db = common.database(cfg)
    with common.errors_handled(db.url):
        if db.kind == "postgres":
            heads = migrate_postgres(db, stamp=stamp)
            common.out.print(
                f"PostgreSQL {db.masked}: schema at {', '.join(heads)} (heads)", markup=False
            )
        else:
            version = asyncio.run(migrate_sqlite(db))
            common.out.print(f"SQLite {db.sqlite_path}: schema version {version}", markup=False)
