"""The dead-letter monitor on SQLite (levels in memory), and without the metrics extra."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from tether.cli import app
from tether.store.sqlite.ddl import migrate_sync


def test_command_counts_sqlite_outbox_dead_letters_and_refuses_postgres_only_sources(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    migrate_sync(conn)
    with conn:
        for n in range(2):
            conn.execute(
                "INSERT INTO tether_outbox (id, state, topic, type, payload, finished_at)"
                " VALUES (?, 'dead', 'order', 'OrderPlaced', '{}', '2026-01-01T00:00:00+00:00')",
                (f"00000000-0000-0000-0000-00000000000{n}",),
            )
    conn.close()
    runner = CliRunner()
    result = runner.invoke(
        app, ["monitor", "deadletters", "--once", "--json", "--db", f"sqlite:///{path}"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["counts"] == {"outbox": 2}
    jobs = runner.invoke(
        app, ["monitor", "deadletters", "--once", "--source", "jobs", "--db", f"sqlite:///{path}"]
    )
    assert jobs.exit_code == 2 and "PostgreSQL, not SQLite" in jobs.output
    missing = runner.invoke(
        app, ["monitor", "deadletters", "--once", "--db", f"sqlite:///{tmp_path / 'none.db'}"]
    )
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_monitor_runs_without_prometheus_client() -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys

        class NoPrometheus:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "prometheus_client":
                    raise ImportError("blocked")

        sys.meta_path.insert(0, NoPrometheus())
        from tether.ops.alerts_state import MemoryAlertState
        from tether.ops.deadletters import DeadLetterMonitor

        class Source:
            name = "outbox"
            async def dead_count(self):
                return 7

        report = asyncio.run(DeadLetterMonitor([Source()], [], MemoryAlertState()).check_once())
        assert "prometheus_client" not in sys.modules
        print(report.counts)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "{'outbox': 7}"
