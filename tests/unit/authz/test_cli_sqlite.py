"""``tether caps`` through the main CLI's entry point, on SQLite (no services)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from tether.authz import Authz, Registry, SqlAuthzStore


async def _seed(url: str) -> None:
    store = SqlAuthzStore.from_url(url)
    await store.create_sqlite_schema()
    authz = Authz(store, Registry(["trade:approve"]))
    await authz.sync()
    await authz.add_user("alice")
    await authz.add_org("acme")
    await store.close()


def tether(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli", "caps", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_grant_and_explain_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'authz.db'}"
    asyncio.run(_seed(url))
    granted = tether("grant", "alice", "trade:approve", "--org", "acme", "--dsn", url)
    assert granted.returncode == 0, granted.stderr
    allowed = tether("explain", "alice", "trade:approve", "--org", "acme", "--dsn", url)
    assert allowed.returncode == 0
    assert allowed.stdout.startswith("allowed: alice trade:approve in acme")
    typo = tether("grant", "alice", "trade:aprove", "--dsn", url)
    assert typo.returncode == 2
    assert "unknown capability 'trade:aprove'" in typo.stderr
