"""tether runners: the registry as a table and as JSON, filtered by kind; SQLite and a bad
--gone-for are refused with exit 2."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from tests.unit.cli.conftest import invoke
from tether.commands import common
from tether.ops.runners import PostgresRunnerRegistry


@pytest.fixture(autouse=True)
def wide_tables() -> Iterator[None]:
    # Rich sizes tables to the terminal, and a test worker has none: fix the width, restored
    # after (None: measured per print).
    unset = common.out._width
    common.out.width = 250
    yield
    common.out._width = unset


async def _seed(dsn: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        registry = PostgresRunnerRegistry(pool)
        await registry.register("relay", "relay-a", 10.0, {"published_total": 12})
        worker = await registry.register("job-worker", "w-1", 10.0, {"done_total": 3})
        await registry.stop(worker, {"done_total": 4})
    finally:
        await pool.close()


def test_runners_table_json_and_kind(cli: CliRunner, pg_dsn: str) -> None:
    asyncio.run(_seed(pg_dsn))
    table = invoke(cli, "runners", "--db", pg_dsn)
    assert table.exit_code == 0, table.output
    for text in ("relay-a", "alive", "published_total=12", "w-1", "stopped", "done_total=4"):
        assert text in table.stdout
    data = json.loads(invoke(cli, "runners", "--db", pg_dsn, "--json", "--kind", "relay").stdout)
    assert [(r["kind"], r["name"], r["status"]) for r in data] == [("relay", "relay-a", "alive")]
    assert data[0]["stats"] == {"published_total": 12.0}


def test_runners_refuses_sqlite_and_a_bad_age(cli: CliRunner, tmp_path: Path) -> None:
    sqlite = invoke(cli, "runners", "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert sqlite.exit_code == 2 and "needs PostgreSQL" in sqlite.output
    bad = invoke(cli, "runners", "--db", "postgresql://u@127.0.0.1/x", "--gone-for", "soon")
    assert bad.exit_code == 2 and "--gone-for 'soon'" in bad.output
