"""Every ``tether`` command against every kind of bad database setting.

Each must end with the documented exit code and exactly one line on stderr: no traceback, and
the password of the URL never shown.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.cli.conftest import invoke

SECRET = "s3cret"
EVENT_ID = "0190f6a2-6f7e-7000-8000-000000000001"
COMMANDS = {
    "migrate": ["migrate"],
    "relay": ["relay", "--drain", "--log-sink"],
    "status": ["status", "--window", "0"],
    "dlq list": ["dlq", "list"],
    "dlq show": ["dlq", "show", EVENT_ID],
    "dlq replay": ["dlq", "replay", "--yes"],
    "dlq purge": ["dlq", "purge", "--yes"],
    "caps grant": ["caps", "grant", "alice", "trade:view"],
    "caps revoke": ["caps", "revoke", "alice", "trade:view"],
    "caps list": ["caps", "list"],
    "caps explain": ["caps", "explain", "alice", "trade:view"],
}
# What is wrong -> (the URL, or None for a config file with an unknown key; exit code; text).
CASES = {
    "missing database": (
        f"postgresql://postgres:{SECRET}@127.0.0.1:5432/tether_no_such_database",
        1,
        "does not exist",
    ),
    "unknown database user": (
        f"postgresql://tether_no_such_user:{SECRET}@127.0.0.1:5432/postgres",
        1,
        "tether_no_such_user",
    ),
    "unreachable host": (f"postgresql://app:{SECRET}@127.0.0.1:1/app", 1, "127.0.0.1"),
    "unknown host": (f"postgresql://app:{SECRET}@tether-no-such-host.invalid/app", 1, ""),
    "bad URL": (f"mysql://app:{SECRET}@db/app", 2, "expected postgresql://"),
    "garbage URL": ("garbage", 2, "expected postgresql://"),
    "unknown config key": (None, 2, "unknown key 'relay.concurency'"),
}


def assert_one_clean_line(result, code: int, fragment: str) -> None:  # type: ignore[no-untyped-def]
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, result.output
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    assert fragment in lines[0], lines
    assert "Traceback" not in result.output
    assert SECRET not in result.output


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", COMMANDS)
def test_bad_database_settings(cli: CliRunner, tmp_path: Path, command: str, case: str) -> None:
    url, code, fragment = CASES[case]
    if url is None:
        config = tmp_path / "tether.toml"
        config.write_text(f'database_url = "sqlite:///{tmp_path}/x.db"\n[relay]\nconcurency = 2\n')
        result = invoke(cli, *COMMANDS[command], "--config", str(config))
    else:
        result = invoke(cli, *COMMANDS[command], "--db", url)
    assert_one_clean_line(result, code, fragment)


@pytest.mark.parametrize("command", COMMANDS)
def test_no_database_configured(cli: CliRunner, command: str) -> None:
    assert_one_clean_line(invoke(cli, *COMMANDS[command]), 2, "no database configured")


@pytest.mark.parametrize(
    ("url", "shown"),
    [(f"mysql://a:{SECRET}@h/d", "'mysql://a:***@h/d'"), ("garbage", "'garbage'")],
)
@pytest.mark.parametrize("command", COMMANDS)
def test_bad_url_from_the_environment(cli: CliRunner, command: str, url: str, shown: str) -> None:
    result = invoke(cli, *COMMANDS[command], env={"TETHER_DATABASE_URL": url})
    assert_one_clean_line(result, 2, f"TETHER_DATABASE_URL={shown}: expected postgresql://")


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "migrate"])
def test_missing_sqlite_file_is_reported_not_created(
    cli: CliRunner, tmp_path: Path, command: str
) -> None:
    path = tmp_path / "absent.db"
    result = invoke(cli, *COMMANDS[command], "--db", f"sqlite:///{path}")
    assert_one_clean_line(result, 1, "does not exist")
    assert not path.exists()


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("caps")])
def test_sqlite_file_without_capability_tables_is_reported_and_left_alone(
    cli: CliRunner, tmp_path: Path, command: str
) -> None:
    # (The outbox commands open SQLite through the queue, which migrates the file by design.)
    path = tmp_path / "empty.db"
    path.touch()
    result = invoke(cli, *COMMANDS[command], "--db", f"sqlite:///{path}")
    assert_one_clean_line(result, 1, "has no capability tables")
    assert path.stat().st_size == 0
