"""What every ``tether`` command shares: consoles, option types, settings, error handling.

Exit codes: 0 success, 1 a runtime failure (database down, missing or refusing us, nothing
found), 2 bad input (flags, environment, config file, no database configured, a malformed
URL). Errors are one line on stderr with passwords masked, never a traceback:
:class:`Boundary` guarantees it for every command, :func:`errors_handled` adds which database.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from typer.core import TyperGroup
from typer.exceptions import TyperException

from tether.config import Database, Settings, load_settings
from tether.core.errors import ConfigError, TetherError
from tether.core.redact import mask_secrets, mask_url

T = TypeVar("T")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML settings file (default: $TETHER_CONFIG).",
        show_default=False,
    ),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        "--db",
        help="postgresql://user@host:5432/db or sqlite:///file.db (default: $TETHER_DATABASE_URL).",
        show_default=False,
    ),
]

# The dead-letter monitor's alert channels, shared by `tether monitor` and `tether worker`.
AlertSlackOption = Annotated[
    str | None,
    typer.Option(
        "--slack-webhook-url",
        envvar="TETHER_ALERT_SLACK_WEBHOOK_URL",
        help="Slack incoming webhook for alerts.",
        show_default=False,
    ),
]
AlertWebhookOption = Annotated[
    str | None,
    typer.Option(
        "--webhook-url",
        envvar="TETHER_ALERT_WEBHOOK_URL",
        help="URL that gets each alert as signed JSON.",
        show_default=False,
    ),
]
AlertSecretOption = Annotated[
    list[str] | None,
    typer.Option(
        "--webhook-secret",
        envvar="TETHER_ALERT_WEBHOOK_SECRET",
        help="whsec_... secret(s) signing the webhook alerts.",
        show_default=False,
    ),
]
AlertAllowOption = Annotated[
    list[str] | None,
    typer.Option("--allow", help="Host or CIDR the alerts' SSRF guard lets through (repeatable)."),
]


FAILURE = 1
BAD_INPUT = 2


def fail(message: str, *, code: int = FAILURE) -> NoReturn:
    # One line, whatever the message: a driver's or a bug's text must not spill over lines.
    line = " ".join(mask_secrets(message).split())
    err.print(f"[bold red]error:[/] {_plain(line)}", soft_wrap=True)
    raise typer.Exit(code=code)


def bad_input(message: str) -> NoReturn:
    fail(message, code=BAD_INPUT)


def _plain(message: str) -> str:
    # Error text may contain [brackets] (lists, TOML keys): never let Rich read them as markup.
    return message.replace("[", r"\[")


def settings(
    config: Path | None, flags: Mapping[str, tuple[object, str]] | None = None
) -> Settings:
    """Load settings or exit 2 with the message naming the bad key."""
    try:
        return load_settings(config, flags)
    except ConfigError as exc:
        bad_input(str(exc))


def database(cfg: Settings) -> Database:
    """The configured database, or exit 2 saying how to configure one."""
    try:
        return cfg.database()
    except ConfigError as exc:
        bad_input(str(exc))


# Errors that are a command-line problem, already reported by Click or Typer as usage errors.
_PASS_THROUGH = (typer.Exit, typer.Abort, TyperException)
_DRIVERS = ("asyncpg", "psycopg", "sqlite3", "aiosqlite", "sqlalchemy", "alembic")


def describe_failure(exc: BaseException, dsn: str | None = None) -> tuple[int, str]:
    """The exit code and one-line message for an error that ends a command."""
    where = mask_url(dsn) if dsn else None
    if isinstance(exc, ConfigError):
        return BAD_INPUT, str(exc)
    if isinstance(exc, TetherError):
        return FAILURE, str(exc)
    if isinstance(exc, OSError | TimeoutError):
        return FAILURE, f"cannot reach the database{f' ({where})' if where else ''}: {exc}"
    if _is_driver_error(exc):
        # Driver messages can carry whole SQL scripts; the first line says what went wrong.
        # SQLAlchemy wraps the driver's error; its own class name would say nothing more.
        cause = getattr(exc, "orig", None)
        first = str(cause or exc).strip().splitlines()[:1] or [""]
        kind = "" if cause is not None else f"{type(exc).__name__}: "
        return FAILURE, f"{where or 'the database'}: {kind}{first[0]}"
    return FAILURE, f"unexpected {type(exc).__name__}: {exc} (a bug in Tether: please report it)"


@contextlib.contextmanager
def errors_handled(dsn: str | None = None) -> Iterator[None]:
    """Turn any error into one line on stderr and its exit code; ``dsn`` names the database."""
    try:
        yield
    except (*_PASS_THROUGH, KeyboardInterrupt):
        raise
    except Exception as exc:
        code, message = describe_failure(exc, dsn)
        fail(message, code=code)


class Boundary(TyperGroup):
    """A command group whose commands, and its sub-groups' commands, end in one error line.

    The last line of defence: commands name their database themselves with
    :func:`errors_handled`; whatever escapes them still never prints a traceback.
    """

    def invoke(self, ctx: Any) -> Any:  # Typer's vendored Click context; the type is private
        with errors_handled():
            return super().invoke(ctx)


def _is_driver_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".", 1)[0] in _DRIVERS


def require_sqlite_file(db: Database) -> None:
    """Opening a missing SQLite file would create an empty one: refuse instead."""
    if db.sqlite_path is not None and not db.sqlite_path.exists():
        raise TetherError(
            f"SQLite database {str(db.sqlite_path)!r} does not exist: run `tether migrate` "
            "first, or check the path (sqlite:///relative.db, sqlite:////absolute.db)"
        )


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def is_interactive() -> bool:
    return sys.stdin.isatty()
