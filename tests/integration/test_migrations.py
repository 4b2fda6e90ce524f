"""Alembic migrations produce exactly the schema in ``store/postgres/schema/``.

Both databases are dumped schema-only with pg_dump and compared, leaving out Alembic's own
version table. Downgrading to nothing and upgrading again must also work.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from tests.support import pg
from tether.store import migrations
from tether.store.postgres import ddl as schema


def dump(dsn: str) -> str:
    out = subprocess.run(
        [
            "pg_dump",
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-table",
            migrations.VERSION_TABLE,
            dsn,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # Session settings and comments differ between runs; the DDL must not.
    lines = [
        ln
        for ln in out.splitlines()
        if ln
        and not ln.startswith(("--", "SET ", "SELECT pg_catalog", "\\restrict", "\\unrestrict"))
    ]
    return re.sub(r"\n+", "\n", "\n".join(lines))


@pytest.fixture
def schema_db() -> Iterator[str]:
    with pg.fresh_database(template="template0") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(schema.full_schema_sql())  # type: ignore[arg-type]
        yield dsn


def test_migrations_give_exactly_the_schema_files(empty_pg_dsn: str, schema_db: str) -> None:
    migrations.upgrade(empty_pg_dsn, "head")
    assert dump(empty_pg_dsn) == dump(schema_db)


def test_downgrade_to_base_and_back(empty_pg_dsn: str) -> None:
    migrations.upgrade(empty_pg_dsn, "head")
    migrations.downgrade(empty_pg_dsn, "base")
    with psycopg.connect(empty_pg_dsn) as conn:
        left = conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'tether_%%' AND tablename <> %s",
            (migrations.VERSION_TABLE,),
        ).fetchall()
    assert left == []
    migrations.upgrade(empty_pg_dsn, "head")


def test_downgrading_the_archive_drops_its_months(empty_pg_dsn: str) -> None:
    migrations.upgrade(empty_pg_dsn, "head")
    with psycopg.connect(empty_pg_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tether_outbox_archive_y2026m01 PARTITION OF tether_outbox_archive"
            " FOR VALUES FROM ('2026-01-01 00:00+00') TO ('2026-02-01 00:00+00')"
        )
    migrations.downgrade(empty_pg_dsn, "0005")
    with psycopg.connect(empty_pg_dsn) as conn:
        left = conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'tether_outbox_archive%%'"
        ).fetchall()
    assert left == []
    migrations.upgrade(empty_pg_dsn, "head")
