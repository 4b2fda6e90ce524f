"""The shared error boundary: whatever a command raises ends in one line and an exit code."""

from __future__ import annotations

import sqlite3

import pytest
import typer
from typer.testing import CliRunner

from tether.commands import common
from tether.core.errors import ConfigError, TetherError


def _app(error: BaseException) -> typer.Typer:
    app = typer.Typer(cls=common.Boundary)

    @app.command()
    def boom() -> None:
        raise error

    @app.command()
    def other() -> None:
        """A second command, so that ``boom`` is a sub-command as in ``tether``."""

    return app


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (ConfigError("relay.batch_size: must be 1..10000"), 2, "relay.batch_size"),
        (TetherError("dead event 42 not found"), 1, "dead event 42 not found"),
        (ConnectionRefusedError(111, "Connection refused"), 1, "cannot reach the database"),
        (sqlite3.OperationalError("no such table: x\nSELECT * FROM x"), 1, "no such table: x"),
        (KeyError("oops"), 1, "unexpected KeyError"),
        (
            RuntimeError("failed for postgresql://app:hunter2@db/app\nsecond line"),
            1,
            "postgresql://app:***@db/app",
        ),
    ],
)
def test_every_error_is_one_line(error: BaseException, code: int, line: str) -> None:
    result = CliRunner().invoke(_app(error), ["boom"], catch_exceptions=False)
    assert result.exit_code == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert line in lines[0]
    assert "hunter2" not in result.output


def test_usage_errors_stay_click_usage_errors() -> None:
    result = CliRunner().invoke(_app(KeyError()), ["boom", "--nope"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "No such option" in result.output


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://app:s3cret@db:5432/app", "postgresql://app:***@db:5432/app"),
        (
            "at postgres+asyncpg://u:p@h/d and nats://t:x@n",
            "at postgres+asyncpg://u:***@h/d and nats://t:***@n",
        ),
        ("postgresql://app@db/app", "postgresql://app@db/app"),
        ("no url here: a:b@c", "no url here: a:b@c"),
    ],
)
def test_mask_secrets(text: str, shown: str) -> None:
    assert common.mask_secrets(text) == shown
