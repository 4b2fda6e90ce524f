"""``tether caps`` against a real database: happy paths and clear errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from tether.authz import Authz, Registry, SqlAuthzStore
from tether.authz.cli import app

runner = CliRunner()


async def _seed(dsn: str) -> None:
    store = SqlAuthzStore.from_url(dsn)
    authz = Authz(store, Registry(["trade:approve", "trade:view"]))
    await authz.sync()
    await authz.add_user("alice")
    await authz.add_org("acme")
    await store.close()


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    asyncio.run(_seed(pg_dsn))
    return pg_dsn


def caps(dsn: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--dsn", dsn])
    return result.exit_code, result.output


def test_grant_list_explain_revoke(dsn: str) -> None:
    code, out = caps(dsn, "grant", "alice", "trade:approve", "--org", "acme", "--expires", "7d")
    assert (code, out.strip()) == (0, "granted trade:approve to alice in acme")
    code, out = caps(dsn, "list", "--user", "alice")
    assert code == 0
    assert "trade:approve" in out
    assert "acme" in out
    code, out = caps(dsn, "explain", "alice", "trade:approve", "--org", "acme")
    assert code == 0
    assert out.startswith("allowed: alice trade:approve in acme by trade:approve (direct grant")
    code, out = caps(dsn, "explain", "alice", "trade:approve", "--org", "globex")
    assert (code, out.strip()) == (
        3,
        "denied: alice trade:approve in globex: granted only in other org(s) acme",
    )
    assert caps(dsn, "revoke", "alice", "trade:approve", "--org", "acme")[0] == 0
    code, out = caps(dsn, "revoke", "alice", "trade:approve", "--org", "acme")
    assert code == 1
    assert "alice has no direct grant of trade:approve in acme" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grant", "alice", "trade:aprove"], "unknown capability 'trade:aprove'"),
        (["grant", "alice", "Trade:View"], "invalid capability name 'Trade:View'"),
        (["grant", "mallory", "trade:view"], "unknown user 'mallory'"),
        (["grant", "alice", "trade:view", "--org", "initech"], "unknown org 'initech'"),
        (["explain", "alice", "trade:aprove"], "unknown capability 'trade:aprove'"),
        (["grant", "alice", "trade:view", "--expires", "soon"], "neither an ISO time"),
        (["grant", "alice", "trade:view", "--expires", "2030-01-01T00:00"], "no time zone"),
        (["grant", "alice", "trade:view", "--expires", "99999999d"], "too far in the future"),
    ],
)
def test_bad_input_is_a_clear_error(dsn: str, args: list[str], message: str) -> None:
    code, out = caps(dsn, *args)
    assert code == 2  # bad input, as in the main CLI
    assert "error:" in out
    assert message in " ".join(out.split())


def test_expiry_in_the_past_is_refused(dsn: str) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    code, out = caps(dsn, "grant", "alice", "trade:view", "--expires", past)
    assert code == 2
    assert "is not in the future" in out


def test_missing_database_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 2
    assert "no database configured: pass --database-url, set TETHER_DATABASE_URL" in result.output


def test_unreachable_database_is_named() -> None:
    code, out = caps("postgresql://postgres@127.0.0.1:1/nowhere", "list")
    assert code == 1
    assert "cannot reach the database" in out
