"""What every ``tether`` command shares: consoles, option types, settings, error handling.

Exit codes: 0 success, 1 a runtime failure (database down, nothing found), 2 bad input
(flags, environment, config file). Errors are one line on stderr, never a traceback.
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

from tether.config import Database, Settings, load_settings, mask_url
from tether.core.errors import ConfigError, TetherError

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


def fail(message: str, *, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {_plain(message)}", soft_wrap=True)
    raise typer.Exit(code=code)


def bad_input(message: str) -> NoReturn:
    fail(message, code=2)


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


@contextlib.contextmanager
def errors_handled(dsn: str | None = None) -> Iterator[None]:
    """Turn Tether and driver errors into one clear line and an exit code."""
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except ConfigError as exc:
        bad_input(str(exc))
    except TetherError as exc:
        fail(str(exc))
    except (OSError, TimeoutError) as exc:
        where = f" ({mask_url(dsn)})" if dsn else ""
        fail(f"cannot reach the database{where}: {exc}")
    except Exception as exc:
        if not _is_driver_error(exc):
            raise
        text = mask_url(dsn) if dsn else "the database"
        # Driver messages can carry whole SQL scripts; the first line says what went wrong.
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[:1] or [""]
        fail(f"{text}: {type(exc).__name__}: {first[0]}")


def _is_driver_error(exc: Exception) -> bool:
    module = type(exc).__module__.split(".", 1)[0]
    return module in ("asyncpg", "psycopg", "sqlite3", "aiosqlite", "sqlalchemy", "alembic")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def is_interactive() -> bool:
    return sys.stdin.isatty()
