"""Working through a transaction-mode pooler (PgBouncer ``pool_mode = transaction``, Supabase's).

Such a pooler lends a server connection for one transaction at a time, so nothing that lives in
a session survives from one transaction to the next: startup parameters other than the few it
tracks (it refuses the rest: ``unsupported startup parameter``), named prepared statements,
``SET``, ``LISTEN``. In :attr:`PoolerMode.TRANSACTION` Tether therefore

* opens asyncpg connections with ``statement_cache_size=0``: every statement is an unnamed
  one, parsed and planned for its own parameters each time (so ``plan_cache_mode``, which only
  steers the reuse of named statements, has nothing left to do);
* sends only the startup parameters the pooler tracks (``application_name`` and the like) and
  applies every other setting with ``set_config(name, value, true)`` at the start of each
  transaction that needs it (:func:`apply_local`);
* does not LISTEN through the pooler: wake-ups fall back to polling, or to a LISTEN connection
  made directly to PostgreSQL when a direct DSN is given (:func:`listen_dsn`).

:attr:`PoolerMode.NONE` (a direct connection) and :attr:`PoolerMode.SESSION` (a session-mode
pooler, one server session per client) keep session settings and prepared statements.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tether.core.errors import ConfigError
from tether.store.drivers import NotInTransactionError

if TYPE_CHECKING:  # asyncpg is the optional ``postgres`` extra
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy


class PoolerMode(StrEnum):
    NONE = "none"
    SESSION = "session"
    TRANSACTION = "transaction"


# Startup parameters PgBouncer accepts in every mode and restores on each server connection
# it lends ("track_extra_parameters" adds more only from 1.20 on).
TRACKED_STARTUP_PARAMETERS = frozenset(
    {"application_name", "client_encoding", "datestyle", "timezone", "standard_conforming_strings"}
)
# Settings that only matter for named prepared statements, which transaction mode never uses.
_MOOT_WITHOUT_PREPARED_STATEMENTS = frozenset({"plan_cache_mode"})
_SET_LOCAL = (
    "SELECT set_config(name, value, true) FROM unnest($1::text[], $2::text[]) AS s(name, value)"
)


def mode_of(value: PoolerMode | str | bool | None) -> PoolerMode:
    """``True`` means a transaction pooler, ``False``/``None`` a direct connection; strings are
    ``none``, ``session`` or ``transaction``."""
    if isinstance(value, PoolerMode):
        return value
    if value is None or value is False:
        return PoolerMode.NONE
    if value is True:
        return PoolerMode.TRANSACTION
    try:
        return PoolerMode(value.strip().lower())
    except ValueError:
        allowed = ", ".join(m.value for m in PoolerMode)
        raise ConfigError(f"pooler mode {value!r} is not one of {allowed}") from None


def _is_tracked(name: str) -> bool:
    return name.lower() in TRACKED_STARTUP_PARAMETERS


def connect_kwargs(
    mode: PoolerMode | str | bool | None, settings: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``asyncpg.connect``/``asyncpg.create_pool``.

    ``settings`` are the session settings the caller wants: sent at startup when the
    connection is a session of its own; in transaction mode only the tracked ones are, and
    :func:`local_settings` names those to apply in each transaction."""
    settings = dict(settings or {})
    if mode_of(mode) is not PoolerMode.TRANSACTION:
        return {"server_settings": settings} if settings else {}
    kwargs: dict[str, Any] = {"statement_cache_size": 0}
    startup = {k: v for k, v in settings.items() if _is_tracked(k)}
    if startup:
        kwargs["server_settings"] = startup
    return kwargs


def local_settings(
    mode: PoolerMode | str | bool | None, settings: Mapping[str, str]
) -> dict[str, str]:
    """The settings to apply with :func:`apply_local` in each transaction (empty unless the
    connection goes through a transaction pooler: there they were set at startup)."""
    if mode_of(mode) is not PoolerMode.TRANSACTION:
        return {}
    return {
        k: v
        for k, v in settings.items()
        if not _is_tracked(k) and k.lower() not in _MOOT_WITHOUT_PREPARED_STATEMENTS
    }


async def apply_local(
    conn: asyncpg.Connection[Any] | PoolConnectionProxy[Any], settings: Mapping[str, str]
) -> None:
    """Set ``settings`` for the rest of the current transaction, in one statement."""
    if not settings:
        return
    if not conn.is_in_transaction():
        # set_config(..., true) outside a transaction block would be a silent no-op.
        raise NotInTransactionError(
            "transaction-local settings need an open transaction: call inside "
            "`async with conn.transaction():`"
        )
    await conn.execute(_SET_LOCAL, list(settings), list(settings.values()))


def listen_dsn(
    mode: PoolerMode | str | bool | None, dsn: str, direct_dsn: str | None = None
) -> str | None:
    """Where to LISTEN: ``direct_dsn`` when given, else ``dsn`` unless it leads to a
    transaction pooler (LISTEN needs a session of its own); None means poll instead."""
    if direct_dsn is not None:
        return direct_dsn
    return None if mode_of(mode) is PoolerMode.TRANSACTION else dsn


def psycopg_kwargs(mode: PoolerMode | str | bool | None) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect``/``AsyncConnection.connect``: no server-side
    prepared statements through a transaction pooler."""
    return {"prepare_threshold": None} if mode_of(mode) is PoolerMode.TRANSACTION else {}


def sqlalchemy_connect_args(url: str, mode: PoolerMode | str | bool | None) -> dict[str, Any]:
    """``connect_args`` for ``create_engine``/``create_async_engine`` on ``url``.

    asyncpg under SQLAlchemy prepares every statement: with both statement caches off it
    prepares them unnamed. psycopg prepares none with ``prepare_threshold=None``."""
    if mode_of(mode) is not PoolerMode.TRANSACTION:
        return {}
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return {}
    driver = parsed.get_dialect().driver
    if driver == "asyncpg":
        return {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
    if driver in ("psycopg", "psycopg_async"):
        return {"prepare_threshold": None}
    if driver == "psycopg2":  # never prepares statements
        return {}
    raise ConfigError(
        f"{driver!r} is not a driver Tether knows how to set up for a transaction pooler: "
        "use postgresql+asyncpg:// or postgresql+psycopg://"
    )


_POOLER_SYMPTOMS = (
    "unsupported startup parameter",
    "prepared statement",  # "... does not exist" / "... already exists"
)


def hint_for(error: BaseException) -> str:
    """A sentence to append to a driver error that a transaction pooler causes, else ``""``."""
    text = str(error)
    if not any(symptom in text for symptom in _POOLER_SYMPTOMS):
        return ""
    return (
        " (behind a transaction-mode pooler such as PgBouncer? set database_pooler = "
        '"transaction", TETHER_DATABASE_POOLER=transaction, or pass pooler_mode="transaction")'
    )
