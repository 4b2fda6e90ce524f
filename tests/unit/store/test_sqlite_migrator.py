"""One SQLite migrator for every component: numbered files, each applied whole or not at all."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tether.store.sqlite import ddl

COMPONENT_TABLES = {
    "tether_outbox",  # outbox and relay
    "tether_outbox_keys",
    "tether_inbox",
    "tether_items",  # work-item engine
    "tether_authz_capabilities",  # authorization
    "tether_authz_user_capabilities",
    "tether_authz_version",
}
LATEST = ddl.schema_files()[-1][0]


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_files_are_numbered_once_and_end_their_last_statement() -> None:
    numbers = [n for n, _ in ddl.schema_files()]
    assert numbers == sorted(set(numbers))
    for _, name in ddl.schema_files():
        text = resources.files("tether.store.sqlite").joinpath(f"schema/{name}").read_text()
        code = [line for line in text.splitlines() if line.strip() and not line.startswith("--")]
        assert code[-1].rstrip().endswith(";"), name


def test_one_call_creates_every_components_tables_and_a_second_does_nothing(
    tmp_path: Path,
) -> None:
    conn = sqlite3.connect(tmp_path / "app.db")
    assert ddl.migrate_sync(conn) == LATEST
    assert tables(conn) >= COMPONENT_TABLES
    conn.execute("INSERT INTO tether_items (id, queue, payload) VALUES ('a', 'q', '{}')")
    conn.commit()
    assert ddl.migrate_sync(conn) == LATEST
    assert conn.execute("SELECT count(*) FROM tether_items").fetchone()[0] == 1
    conn.close()


def test_a_database_part_way_gets_only_the_newer_files(tmp_path: Path) -> None:
    first, name = ddl.schema_files()[0]
    conn = sqlite3.connect(tmp_path / "app.db")
    conn.executescript(
        resources.files("tether.store.sqlite").joinpath(f"schema/{name}").read_text()
    )
    conn.execute(f"PRAGMA user_version = {first}")
    assert "tether_authz_version" not in tables(conn)
    assert ddl.migrate_sync(conn) == LATEST
    assert tables(conn) >= COMPONENT_TABLES
    conn.close()


async def test_aiosqlite_sqlalchemy_and_sqlite3_reach_the_same_schema(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "a.db") as conn:
        assert await ddl.migrate(conn) == LATEST
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    try:
        assert await ddl.migrate(engine) == LATEST
        assert await ddl.migrate(engine) == LATEST
    finally:
        await engine.dispose()
    with sqlite3.connect(tmp_path / "c.db") as conn:
        ddl.migrate_sync(conn)
    schemas = []
    for name in ("a.db", "b.db", "c.db"):
        with sqlite3.connect(tmp_path / name) as conn:
            schemas.append(sorted(conn.execute("SELECT type, name, sql FROM sqlite_master")))
        assert version(tmp_path / name) == LATEST
    assert schemas[0] == schemas[1] == schemas[2]


async def test_a_failing_file_leaves_nothing_half_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ddl.schema_files()
    broken = (LATEST + 10, "999_broken.sql")
    monkeypatch.setattr(ddl, "schema_files", lambda: [*real, broken])
    read = ddl._read
    monkeypatch.setattr(
        ddl,
        "_read",
        lambda name: (
            "CREATE TABLE half (x);\nCREATE TABLE oops (;" if name == broken[1] else read(name)
        ),
    )
    with sqlite3.connect(tmp_path / "a.db") as conn, pytest.raises(sqlite3.OperationalError):
        ddl.migrate_sync(conn)
    async with aiosqlite.connect(tmp_path / "b.db") as aconn:
        with pytest.raises(sqlite3.OperationalError):
            await ddl.migrate(aconn)
    for name in ("a.db", "b.db"):
        assert version(tmp_path / name) == LATEST  # every good file applied, the bad one not
        with sqlite3.connect(tmp_path / name) as conn:
            assert "half" not in tables(conn)
            assert tables(conn) >= COMPONENT_TABLES
