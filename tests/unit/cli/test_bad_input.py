"""Bad flags, environment and config files: one clear line on stderr, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.cli.conftest import invoke


def assert_usage_error(result, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["relay", "--batch-size", "abc", "--db", "sqlite:///x.db"], "--batch-size"),
        (["status", "--window", "-1", "--db", "sqlite:///x.db"], "--window"),
        (["demo", "--duration", "0"], "--duration"),
        (["dlq", "list", "--limit", "0"], "--limit"),
        (["relay", "--no-such-flag"], "--no-such-flag"),
        (["no-such-command"], "no-such-command"),
    ],
)
def test_flag_parsing_errors(cli: CliRunner, args: list[str], fragment: str) -> None:
    assert_usage_error(invoke(cli, *args), fragment)


def test_range_checked_by_settings(cli: CliRunner) -> None:
    result = invoke(cli, "relay", "--batch-size", "0", "--db", "sqlite:///x.db", "--log-sink")
    assert_usage_error(result, "--batch-size=0: must be an integer 1..10000")


def test_bad_env(cli: CliRunner) -> None:
    result = invoke(
        cli,
        "relay",
        "--log-sink",
        env={"TETHER_RELAY_BATCH_SIZE": "abc", "TETHER_DATABASE_URL": "sqlite:///x.db"},
    )
    assert_usage_error(result, "TETHER_RELAY_BATCH_SIZE='abc': must be an integer 1..10000")


def test_bad_config_file(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "tether.toml"
    path.write_text("[relay]\nconcurency = 2\n")
    result = invoke(cli, "status", "--config", str(path))
    assert_usage_error(result, "unknown key 'relay.concurency'", "relay.concurrency")


def test_missing_config_file(cli: CliRunner, tmp_path: Path) -> None:
    result = invoke(cli, "status", env={"TETHER_CONFIG": str(tmp_path / "nope.toml")})
    assert_usage_error(result, "nope.toml", "does not exist")


def test_no_database(cli: CliRunner) -> None:
    assert_usage_error(invoke(cli, "status"), "no database configured", "TETHER_DATABASE_URL")


def test_bad_database_url_masks_password(cli: CliRunner) -> None:
    result = invoke(cli, "migrate", "--db", "mysql://app:s3cret@db/app")
    assert_usage_error(result, "--database-url='mysql://app:***@db/app'")
    assert "s3cret" not in result.output


def test_relay_without_sinks(cli: CliRunner) -> None:
    assert_usage_error(invoke(cli, "relay", "--db", "sqlite:///x.db"), "no sink configured")


def test_bad_filters(cli: CliRunner) -> None:
    db = "sqlite:///x.db"
    assert_usage_error(
        invoke(cli, "dlq", "list", "--before", "yesterday", "--db", db), "--before 'yesterday'"
    )
    assert_usage_error(
        invoke(cli, "dlq", "replay", "--id", "42", "--db", db), "--id '42' is not an event id"
    )
    assert_usage_error(invoke(cli, "dlq", "show", "nope", "--db", db), "'nope' is not an event id")


def test_demo_db_in_missing_folder(cli: CliRunner, tmp_path: Path) -> None:
    result = invoke(cli, "demo", "--db", str(tmp_path / "no" / "demo.db"), "--no-live")
    assert_usage_error(result, "does not exist")


def test_sqlite_file_missing_is_a_runtime_error(cli: CliRunner, tmp_path: Path) -> None:
    result = invoke(cli, "status", "--db", f"sqlite:///{tmp_path}/absent.db")
    assert result.exit_code == 1
    assert "run `tether migrate` first" in result.stderr
