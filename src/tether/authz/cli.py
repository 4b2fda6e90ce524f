"""``tether caps``: grant, revoke, list and explain capabilities from the command line.

Mounted by the main CLI as ``tether caps``. The capability registry is read from the
database (the application synchronizes it at start-up), so a misspelt name is an error here
too, never a grant nobody can use. ``--tenant`` (docs/tenancy.md) scopes every read and write
to one tenant, whose id is the org's: an application role under row-level security then
reaches that tenant's grants only. The database comes from ``--dsn`` (or ``--db``),
``TETHER_DATABASE_URL`` or the ``--config`` file, as for every ``tether`` command, and errors
end the command as they do there: one line on stderr, exit 1 or 2, no traceback.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from tether.authz.errors import (
    InvalidCapabilityName,
    InvalidGrantError,
    UnknownCapabilityError,
    UnknownSubjectError,
)
from tether.authz.names import SUPER_ADMIN, Registry, parse
from tether.authz.service import Authz
from tether.authz.sql import SqlAuthzStore
from tether.commands import common
from tether.config import Database
from tether.core.errors import EventValidationError, TetherError
from tether.tenancy import check_tenant_id

app = typer.Typer(
    help="Grant, revoke, list and explain capabilities.",
    no_args_is_help=True,
    cls=common.Boundary,
)
_out = Console()
T = TypeVar("T")

DsnOption = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        "--database-url",
        "--db",
        help="postgresql://user@host:5432/db or sqlite:///file.db (default: $TETHER_DATABASE_URL).",
        show_default=False,
    ),
]
OrgOption = Annotated[
    str | None, typer.Option("--org", help="Organization; omit for a grant in every org.")
]
TenantOption = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        help="Scope to one tenant (tenancy on): its grants only; the org is the tenant.",
        show_default=False,
    ),
]

DENIED = 3
_DURATION = re.compile(r"([0-9]{1,9})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
# A user, org or capability the database does not know, or a grant refused before writing.
_REFUSED = (InvalidCapabilityName, UnknownCapabilityError, UnknownSubjectError, InvalidGrantError)


def parse_expiry(text: str | None, now: datetime) -> datetime | None:
    """An ISO 8601 time with zone, or a duration from ``now``: ``30m``, ``12h``, ``7d``; in UTC.

    Raises :class:`InvalidGrantError` naming the text for anything else.
    """
    if text is None:
        return None
    duration = _DURATION.fullmatch(text)
    if duration is not None:
        try:
            return now + timedelta(**{_UNITS[duration[2]]: int(duration[1])})
        except OverflowError:
            raise InvalidGrantError(f"--expires {text!r} is too far in the future") from None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidGrantError(
            f"--expires {text!r} is neither an ISO time nor a duration like 7d"
        ) from None
    if when.tzinfo is None:
        raise InvalidGrantError(f"--expires {text!r} has no time zone; add Z or +05:30")
    try:
        return when.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-14:00 is in the year 10000 in UTC
        raise InvalidGrantError(f"--expires {text!r} is too far in the future") from None


def _database(dsn: str | None, config: Path | None) -> Database:
    cfg = common.settings(config, {"database_url": (dsn, "--dsn")})
    db = common.database(cfg)
    common.require_sqlite_file(db)
    return db


open_store: Callable[..., SqlAuthzStore] = SqlAuthzStore.from_url
"""Builds the commands' store from a database URL. ``tether caps`` (:mod:`tether.commands.caps`)
sets one whose grant changes are written to the outbox; authz itself does not import it."""


def _scope(tenant: str | None, org: str | None) -> tuple[str | None, str | None]:
    """``(tenant, org)`` checked: with --tenant the org is the tenant (exit 2 on a bad id or
    an --org naming another one), before anything is read or written."""
    if tenant is None:
        return None, org
    try:
        tenant = check_tenant_id(tenant)
    except EventValidationError as exc:
        common.bad_input(f"--tenant: {exc}")
    if org is not None and org != tenant:
        common.bad_input(
            f"--org {org!r} is not --tenant {tenant!r}: with tenancy the org is the tenant"
        )
    return tenant, tenant


async def _authz(db: Database, tenant: str | None = None) -> Authz:
    store = open_store(db.url, pooler_mode=db.pooler)
    try:
        stored = await store.capabilities()
    except DBAPIError as exc:
        await store.close()
        if _is_missing_table(exc):
            raise TetherError(
                f"{db.masked} has no capability tables: run `tether migrate` (PostgreSQL) or "
                "start the application once (SQLite)"
            ) from None
        raise
    declared = [n for n in stored if n != SUPER_ADMIN and not parse(n).is_wildcard]
    if not declared:
        await store.close()
        raise TetherError(
            "no capabilities in this database: start the application once to sync them"
        )
    return Authz(store, Registry(declared), use_cache=False, tenancy=tenant is not None)


def _is_missing_table(exc: DBAPIError) -> bool:
    text = str(exc.orig)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def _run(
    dsn: str | None,
    config: Path | None,
    action: Callable[[Authz], Awaitable[T]],
    tenant: str | None = None,
) -> T:
    db = _database(dsn, config)

    async def main() -> T:
        authz = await _authz(db, tenant)
        try:
            return await action(authz)
        finally:
            await authz.store.close()

    with common.errors_handled(db.url):
        try:
            return asyncio.run(main())
        except _REFUSED as exc:
            common.bad_input(str(exc))


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
    tenant: TenantOption = None,
    config: common.ConfigOption = None,
) -> None:
    """Grant CAPABILITY to USER in --org (or every org)."""
    tenant, org = _scope(tenant, org)
    try:
        expires_at = parse_expiry(expires, datetime.now(UTC))
    except InvalidGrantError as exc:
        common.bad_input(str(exc))
    _run(
        dsn,
        config,
        lambda a: a.grant(user, capability, org, expires_at=expires_at, granted_by=by),
        tenant,
    )
    _out.print(f"granted {capability} to {user} in {org or 'every org'}")


@app.command()
def revoke(
    user: str,
    capability: str,
    *,
    dsn: DsnOption = None,
    org: OrgOption = None,
    tenant: TenantOption = None,
    config: common.ConfigOption = None,
) -> None:
    """Revoke a direct grant of CAPABILITY from USER."""
    tenant, org = _scope(tenant, org)
    if not _run(dsn, config, lambda a: a.revoke(user, capability, org), tenant):
        common.fail(f"{user} has no direct grant of {capability} in {org or 'every org'}")
    _out.print(f"revoked {capability} from {user} in {org or 'every org'}")


@app.command("list")
def list_grants(
    dsn: DsnOption = None,
    user: Annotated[str | None, typer.Option("--user")] = None,
    org: OrgOption = None,
    tenant: TenantOption = None,
    config: common.ConfigOption = None,
) -> None:
    """List direct grants and role assignments."""
    tenant, org = _scope(tenant, org)
    records = _run(
        dsn, config, lambda a: a.store.list_grants(user=user, org=org, tenant=tenant), tenant
    )
    table = Table("user", "org", "capability / role", "expires", "granted by", "granted at")
    for r in sorted(records, key=lambda r: (r.user, r.org or "", r.capability or r.role or "")):
        what = r.capability or f"role {r.role}"
        expires_at = r.expires_at.isoformat() if r.expires_at else "never"
        granted_at = r.granted_at.isoformat() if r.granted_at else ""
        table.add_row(r.user, r.org or "*", what, expires_at, r.granted_by or "", granted_at)
    _out.print(table)


@app.command()
def explain(
    user: str,
    capability: str,
    *,
    dsn: DsnOption = None,
    org: OrgOption = None,
    tenant: TenantOption = None,
    config: common.ConfigOption = None,
) -> None:
    """Say whether USER has CAPABILITY in --org, and why. Exit code 0 allowed, 3 denied."""
    tenant, org = _scope(tenant, org)
    decision = _run(dsn, config, lambda a: a.explain(user, capability, org), tenant)
    _out.print(str(decision), markup=False, soft_wrap=True)
    if not decision.allowed:
        raise typer.Exit(code=DENIED)
