"""``tether dlq`` and ``tether status`` with ``--tenant``, run as an application role under
row-level security: tenant A's commands list, count, show, replay and purge none of tenant B's
events; without a tenant the role sees nothing; a bad tenant id is refused (exit 2)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from tests.support.tenancy import TenancyDb, tenancy_database
from tests.unit.cli.conftest import invoke, seed, sqlite_url
from tether.outbox import add_event_sync
from tether.store.sqlite.ddl import migrate_sync

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


@pytest.fixture
def db() -> Iterator[TenancyDb]:
    with tenancy_database() as created:
        # seed: 6 events, 0-2 acme, 3-5 globex; 0, 1 (acme) and 4 (globex) dead
        created_ids = seed(created.admin, 6, dead={0, 1, 4})
        with psycopg.connect(created.admin, autocommit=True) as conn:
            conn.execute("CREATE TABLE seed_ids (i int, id uuid)")
            for i, id in enumerate(created_ids):
                conn.execute("INSERT INTO seed_ids VALUES (%s, %s)", (i, id))
        yield created


def ids_of(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [str(r[0]) for r in conn.execute("SELECT id FROM seed_ids ORDER BY i")]


def dead_by_tenant(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT tenant_id, count(*) FROM tether_outbox WHERE state = 'dead' GROUP BY 1"
        ).fetchall()
    return {str(t): int(n) for t, n in rows}


def listed(cli: CliRunner, dsn: str, *args: str) -> set[str]:
    result = invoke(cli, "dlq", "list", "--db", dsn, "--json", *args)
    assert result.exit_code == 0, result.output
    return {e["id"] for e in json.loads(result.stdout)}


def test_dlq_list_and_show_stay_inside_the_tenant(cli: CliRunner, db: TenancyDb) -> None:
    ids = ids_of(db.admin)
    assert listed(cli, db.app, "--tenant", "acme") == {ids[0], ids[1]}
    assert listed(cli, db.app, "--tenant", "globex") == {ids[4]}
    assert listed(cli, db.app) == set()  # no tenant: row-level security shows nothing
    # The owner bypasses row-level security; --tenant still filters.
    assert listed(cli, db.admin, "--tenant", "acme") == {ids[0], ids[1]}
    assert listed(cli, db.admin) == {ids[0], ids[1], ids[4]}
    for dsn in (db.app, db.admin):
        shown = invoke(cli, "dlq", "show", ids[4], "--db", dsn, "--tenant", "acme", "--json")
        assert shown.exit_code != 0 and "no dead item with id" in shown.output
        mine = invoke(cli, "dlq", "show", ids[0], "--db", dsn, "--tenant", "acme", "--json")
        assert mine.exit_code == 0 and json.loads(mine.stdout)["tenant_id"] == "acme"


def test_status_counts_one_tenant_or_what_the_role_sees(cli: CliRunner, db: TenancyDb) -> None:
    def status(dsn: str, *args: str) -> dict[str, object]:
        result = invoke(cli, "status", "--db", dsn, "--json", "--window", "0.05", *args)
        assert result.exit_code == 0, result.output
        data: dict[str, object] = json.loads(result.stdout)
        return data

    acme = status(db.app, "--tenant", "acme")
    assert (acme["pending"], acme["dead"]) == (1, 2)
    assert acme["produced_per_second"] is None  # the sequence counts every tenant: no rates
    globex = status(db.admin, "--tenant", "globex")
    assert (globex["pending"], globex["dead"]) == (2, 1)
    # Without a tenant, as the application role: row-level security hides every tenant, and
    # the id sequence (every tenant's volume) is neither readable by this role nor read: zero
    # counts and no rates, where this used to fail with a permission error.
    unscoped = status(db.app)
    assert (unscoped["pending"], unscoped["dead"], unscoped["produced_per_second"]) == (0, 0, None)
    table = invoke(cli, "status", "--db", db.app, "--window", "0.05")
    assert table.exit_code == 0 and "produced/s" in table.stdout, table.output
    # The owner still gets the whole outbox and its rates.
    owner = status(db.admin)
    assert (owner["pending"], owner["dead"]) == (3, 3)
    assert owner["produced_per_second"] is not None


def test_replay_and_purge_touch_only_the_tenant(cli: CliRunner, db: TenancyDb) -> None:
    replay = invoke(cli, "dlq", "replay", "--db", db.app, "--tenant", "acme", "--yes")
    assert replay.exit_code == 0, replay.output
    assert dead_by_tenant(db.admin) == {"globex": 1}
    nothing = invoke(cli, "dlq", "purge", "--db", db.app, "--yes")
    assert nothing.exit_code == 0 and "nothing to purge" in nothing.stdout
    purge = invoke(cli, "dlq", "purge", "--db", db.app, "--tenant", "globex", "--yes")
    assert purge.exit_code == 0, purge.output
    assert dead_by_tenant(db.admin) == {}
    with psycopg.connect(db.admin) as conn:
        left = conn.execute("SELECT tenant_id, count(*) FROM tether_outbox GROUP BY 1").fetchall()
    assert dict(left) == {"acme": 3, "globex": 2}


@pytest.mark.parametrize("bad", ["acme corp", "", "../x"])
def test_a_bad_tenant_id_is_refused(cli: CliRunner, db: TenancyDb, bad: str) -> None:
    for args in (("dlq", "purge", "--yes"), ("dlq", "list"), ("status",)):
        result = invoke(cli, *args, "--db", db.app, "--tenant", bad)
        assert result.exit_code == 2 and "--tenant" in result.output, result.output
    assert dead_by_tenant(db.admin) == {"acme": 2, "globex": 1}


def test_sqlite_status_and_list_filter_by_tenant(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    conn = sqlite3.connect(path)
    migrate_sync(conn)
    for tenant in ("acme", "acme", "globex"):
        add_event_sync(conn, "OrderPlaced", {}, tenant_id=tenant)
    conn.commit()
    conn.close()
    result = invoke(cli, "status", "--db", sqlite_url(path), "--json", "--tenant", "acme")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pending"] == 2
