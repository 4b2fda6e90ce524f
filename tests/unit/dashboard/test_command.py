"""``tether dashboard``: bad settings exit 2 with one line naming the problem; --check passes
valid ones without serving."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.dashboard import digest

DB = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "s" * 40


def run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["dashboard", *args], env={"TETHER_CONFIG": "", **env})
    return result.exit_code, result.output


@pytest.fixture
def users(tmp_path: Path) -> Path:
    path = tmp_path / "users"
    path.write_text(f"# operators\nana {digest('ana-token-0123456789')}\n")
    return path


def test_valid_settings_check(users: Path) -> None:
    code, out = run(
        ["--db", DB, "--users", str(users), "--check"], {"TETHER_DASHBOARD_SECRET": SECRET}
    )
    assert code == 0, out
    assert "dashboard settings are valid" in out and "1 login token(s)" in out


@pytest.mark.parametrize(
    ("args", "secret", "message"),
    [
        (["--db", DB], "", "$TETHER_DASHBOARD_SECRET must hold at least 32 characters"),
        (["--db", DB], "short", "$TETHER_DASHBOARD_SECRET must hold at least 32 characters"),
        (["--db", "sqlite:///x.db"], SECRET, "the dashboard needs PostgreSQL"),
        (["--db", DB, "--users", "/nonexistent/users"], SECRET, "--users /nonexistent/users"),
        (["--db", DB, "--refresh", "0"], SECRET, "--refresh"),
    ],
)
def test_bad_settings_exit_2(args: list[str], secret: str, message: str) -> None:
    code, out = run([*args, "--check"], {"TETHER_DASHBOARD_SECRET": secret})
    assert code == 2, out
    assert message in out, out


def test_a_bad_users_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("ana\nbob " + "z" * 64 + "\n")
    code, out = run(
        ["--db", DB, "--users", str(path), "--check"], {"TETHER_DASHBOARD_SECRET": SECRET}
    )
    assert code == 2 and "line 1: expected '<user> <sha256 of token>'" in out, out
    path.write_text("bob " + "z" * 64 + "\n")
    code, out = run(
        ["--db", DB, "--users", str(path), "--check"], {"TETHER_DASHBOARD_SECRET": SECRET}
    )
    assert code == 2 and "token digest must be 64 lower-case hex digits" in out, out
