"""The same commands on the embedded SQLite store, and the optional ``caps`` sub-app."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from tests.unit.cli.conftest import invoke
from tether.outbox import add_event_sync


def test_sqlite_migrate_status_dlq_relay(cli: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    migrated = invoke(cli, "migrate", "--db", url)
    assert migrated.exit_code == 0 and "schema version" in migrated.stdout
    with contextlib.closing(sqlite3.connect(tmp_path / "shop.db")) as conn, conn:
        refs = [
            add_event_sync(
                conn, "OrderPlaced", {"n": i}, aggregate_type="order", aggregate_id=str(i)
            )
            for i in range(3)
        ]
        conn.execute(
            "UPDATE tether_outbox SET state = 'dead', last_error = 'refused' WHERE id = ?",
            (str(refs[0].id),),
        )
    status = json.loads(invoke(cli, "status", "--db", url, "--json", "--window", "0").stdout)
    assert (status["pending"], status["dead"]) == (2, 1)
    listed = json.loads(invoke(cli, "dlq", "list", "--db", url, "--json").stdout)
    assert [e["id"] for e in listed] == [str(refs[0].id)]
    shown = json.loads(invoke(cli, "dlq", "show", str(refs[0].id), "--db", url, "--json").stdout)
    assert (shown["state"], shown["last_error"]) == ("dead", "refused")
    live = invoke(cli, "dlq", "show", str(refs[1].id), "--db", url)
    assert live.exit_code == 1 and "no dead item with id" in live.stderr
    replayed = invoke(cli, "dlq", "replay", "--error-contains", "refused", "--yes", "--db", url)
    assert replayed.exit_code == 0 and "Replayed 1 event(s)" in replayed.stdout
    relayed = invoke(cli, "relay", "--db", url, "--log-sink", "--drain")
    assert relayed.exit_code == 0, relayed.output
    assert len(relayed.stdout.splitlines()) == 3
    after = json.loads(invoke(cli, "status", "--db", url, "--json", "--window", "0").stdout)
    assert (after["pending"], after["dead"]) == (0, 0)


def test_interactive_confirmation(cli: CliRunner, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/shop.db"
    invoke(cli, "migrate", "--db", url)
    with contextlib.closing(sqlite3.connect(tmp_path / "shop.db")) as conn, conn:
        add_event_sync(conn, "OrderPlaced", {}, aggregate_type="order", aggregate_id="1")
        conn.execute("UPDATE tether_outbox SET state = 'dead'")
    monkeypatch.setattr("tether.commands.common.is_interactive", lambda: True)
    declined = invoke(cli, "dlq", "purge", "--db", url, input="n\n")
    assert declined.exit_code == 1 and "Purge 1 dead event(s)?" in declined.output
    accepted = invoke(cli, "dlq", "purge", "--db", url, input="y\n")
    assert accepted.exit_code == 0 and "Purged 1 dead event(s)" in accepted.stdout


def test_caps_sub_app_is_mounted(cli: CliRunner) -> None:
    result = invoke(cli, "caps", "--help")
    assert result.exit_code == 0 and "capabilit" in result.stdout.lower()


def test_version_and_help(cli: CliRunner) -> None:
    assert invoke(cli, "--version").stdout.startswith("tether ")
    result = invoke(cli, "--help")
    assert result.exit_code == 0
    for command in ("migrate", "relay", "status", "dlq", "demo"):
        assert command in result.stdout
