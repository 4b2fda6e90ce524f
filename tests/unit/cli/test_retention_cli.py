"""``tether retention``: bad ages and flag combinations exit 2 naming the flag; on SQLite a
pass (and a dry run) removes old published rows, dead letters and keys, one tenant's or all."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.cli.conftest import invoke, sqlite_url
from tether.commands.retention import parse_age
from tether.outbox import add_event_sync


def test_parse_age_units() -> None:
    assert parse_age("--keys", "45s") == timedelta(seconds=45)
    assert parse_age("--keys", "30m") == timedelta(minutes=30)
    assert parse_age("--keys", "12h") == timedelta(hours=12)
    assert parse_age("--keys", "7D") == timedelta(days=7)
    assert parse_age("--dead", "never", never=True) is None


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--published", "7"], "--published '7'"),
        (["--published", "-1d"], "--published"),
        (["--dead", "forever"], "--dead 'forever'"),
        (["--keys", "never"], "--keys 'never'"),
        (["--keys", "1w"], "--keys"),
        (["--tenant", "a b"], "--tenant"),
        (["--tenant", "acme", "--archive"], "every tenant"),
    ],
)
def test_bad_flags_exit_2(cli: CliRunner, tmp_path: Path, args: list[str], fragment: str) -> None:
    result = invoke(cli, "retention", "--db", sqlite_url(tmp_path / "x.db"), *args)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr and "Traceback" not in result.output


def test_archive_is_postgresql_only(cli: CliRunner, tmp_path: Path) -> None:
    result = invoke(cli, "retention", "--db", sqlite_url(tmp_path / "x.db"), "--archive")
    assert result.exit_code == 2 and "PostgreSQL only" in result.stderr


def test_no_database(cli: CliRunner) -> None:
    result = invoke(cli, "retention")
    assert result.exit_code == 2 and "database" in result.stderr


def _outbox(path: Path) -> dict[str, tuple[list[int], int]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        out = {}
        for tenant in ("acme", "globex"):
            rows = conn.execute(
                "SELECT json_extract(payload, '$.n') FROM tether_outbox WHERE tenant_id = ? "
                "ORDER BY 1",
                (tenant,),
            ).fetchall()
            keys = conn.execute(
                "SELECT count(*) FROM tether_outbox_keys WHERE tenant_id = ?", (tenant,)
            ).fetchone()
            out[tenant] = ([int(r[0]) for r in rows], int(keys[0]))
        return out


def test_sqlite_sweep(cli: CliRunner, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "shop.db")
    assert invoke(cli, "migrate", "--db", url).exit_code == 0
    old = "2020-01-01T00:00:00.000000+00:00"
    with contextlib.closing(sqlite3.connect(tmp_path / "shop.db")) as conn, conn:
        for tenant in ("acme", "globex"):
            for n in range(3):  # 0 old published, 1 old dead, 2 pending
                add_event_sync(conn, "E", {"n": n}, tenant_id=tenant, idempotency_key=f"k{n}")
        add_event_sync(conn, "E", {"n": 0})  # no tenant: swept only without --tenant
        conn.execute(
            "UPDATE tether_outbox SET finished_at = ?, state = CASE json_extract(payload, '$.n') "
            "WHEN 0 THEN 'done' ELSE 'dead' END WHERE json_extract(payload, '$.n') < 2",
            (old,),
        )
        conn.execute("UPDATE tether_outbox_keys SET created_at = ? WHERE key = 'k0'", (old,))

    dry = invoke(cli, "retention", "--db", url, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    counts = json.loads(dry.stdout)
    assert (counts["published"], counts["dead"], counts["idempotency_keys"]) == (3, 2, 2)
    assert _outbox(tmp_path / "shop.db")["acme"] == ([0, 1, 2], 3)

    one = invoke(cli, "retention", "--db", url, "--tenant", "acme", "--dead", "never")
    assert one.exit_code == 0, one.output
    assert "removed" in one.stdout and "kept (--dead never)" in one.stdout
    assert _outbox(tmp_path / "shop.db") == {"acme": ([1, 2], 2), "globex": ([0, 1, 2], 3)}

    rest = json.loads(invoke(cli, "retention", "--db", url, "--json").stdout)
    assert (rest["published"], rest["dead"], rest["idempotency_keys"]) == (2, 2, 1)
    assert _outbox(tmp_path / "shop.db") == {"acme": ([2], 2), "globex": ([2], 2)}
