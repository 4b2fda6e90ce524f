"""``tether caps``: grant, revoke, list and explain capabilities from the command line.

Mounted by the main CLI as ``tether caps``. The capability registry is read from the
database (the application synchronizes it at start-up), so a misspelt name is an error here
too, never a grant nobody can use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from tether.authz.errors import (
    AuthzError,
    InvalidCapabilityName,
    InvalidGrantError,
    UnknownCapabilityError,
    UnknownSubjectError,
)
from tether.authz.names import SUPER_ADMIN, Registry, parse
from tether.authz.service import Authz
from tether.authz.sql import SqlAuthzStore
from tether.core.errors import TetherError

app = typer.Typer(help="Grant, revoke, list and explain capabilities.", no_args_is_help=True)
_out = Console()
_err = Console(stderr=True)
T = TypeVar("T")

DsnOption = Annotated[
    str | None,
    typer.Option(
        "--dsn", envvar="TETHER_DATABASE_URL", help="postgresql://… or sqlite+aiosqlite:///…"
    ),
]
OrgOption = Annotated[
    str | None, typer.Option("--org", help="Organization; omit for a grant in every org.")
]


BAD_INPUT = 2  # the exit codes of the main CLI: 1 runtime failure, 2 bad input
DENIED = 3


def _fail(message: str, code: int = 1) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code=code)


def _parse_expiry(text: str | None) -> datetime | None:
    """An ISO 8601 time with zone, or a duration from now: ``30m``, ``12h``, ``7d``."""
    if text is None:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[:-1].isdigit() and text[-1:] in units:
        return datetime.now(UTC) + timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(
            f"--expires {text!r} is neither an ISO time nor a duration like 7d", BAD_INPUT
        ) from None
    if when.tzinfo is None:
        raise _fail(f"--expires {text!r} has no time zone; add Z or +05:30", BAD_INPUT)
    return when


async def _authz(dsn: str | None) -> Authz:
    if not dsn:
        raise _fail("no database: pass --dsn or set TETHER_DATABASE_URL", BAD_INPUT)
    store = SqlAuthzStore.from_url(dsn)
    stored = await store.capabilities()
    declared = [n for n in stored if n != SUPER_ADMIN and not parse(n).is_wildcard]
    if not declared:
        await store.close()
        raise _fail("no capabilities in this database: start the application once to sync them")
    return Authz(store, Registry(declared), use_cache=False)


def _run(dsn: str | None, action: Callable[[Authz], Awaitable[T]]) -> T:
    async def main() -> T:
        authz = await _authz(dsn)
        try:
            return await action(authz)
        finally:
            await authz.store.close()

    try:
        return asyncio.run(main())
    except (
        InvalidCapabilityName,
        UnknownCapabilityError,
        UnknownSubjectError,
        InvalidGrantError,
    ) as exc:
        raise _fail(str(exc), BAD_INPUT) from None
    except (AuthzError, TetherError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot reach the database: {exc}") from None


@app.command()
def grant(
    user: str,
    capability: str,
    *,
    dsn: DsnOption = None,
    org: OrgOption = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="ISO time with zone, or 30m / 12h / 7d.")
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who grants (audit).")] = None,
) -> None:
    """Grant CAPABILITY to USER in --org (or every org)."""
    expires_at = _parse_expiry(expires)
    _run(dsn, lambda a: a.grant(user, capability, org, expires_at=expires_at, granted_by=by))
    _out.print(f"granted {capability} to {user} in {org or 'every org'}")


@app.command()
def revoke(user: str, capability: str, dsn: DsnOption = None, org: OrgOption = None) -> None:
    """Revoke a direct grant of CAPABILITY from USER."""
    if not _run(dsn, lambda a: a.revoke(user, capability, org)):
        raise _fail(f"{user} has no direct grant of {capability} in {org or 'every org'}")
    _out.print(f"revoked {capability} from {user} in {org or 'every org'}")


@app.command("list")
def list_grants(
    dsn: DsnOption = None,
    user: Annotated[str | None, typer.Option("--user")] = None,
    org: OrgOption = None,
) -> None:
    """List direct grants and role assignments."""
    records = _run(dsn, lambda a: a.store.list_grants(user=user, org=org))
    table = Table("user", "org", "capability / role", "expires", "granted by", "granted at")
    for r in sorted(records, key=lambda r: (r.user, r.org or "", r.capability or r.role or "")):
        what = r.capability or f"role {r.role}"
        expires_at = r.expires_at.isoformat() if r.expires_at else "never"
        granted_at = r.granted_at.isoformat() if r.granted_at else ""
        table.add_row(r.user, r.org or "*", what, expires_at, r.granted_by or "", granted_at)
    _out.print(table)


@app.command()
def explain(user: str, capability: str, dsn: DsnOption = None, org: OrgOption = None) -> None:
    """Say whether USER has CAPABILITY in --org, and why. Exit code 0 allowed, 3 denied."""
    decision = _run(dsn, lambda a: a.explain(user, capability, org))
    _out.print(str(decision), markup=False, soft_wrap=True)
    if not decision.allowed:
        raise typer.Exit(code=DENIED)
