"""Tether's names for the databases it runs on: ``postgres`` and ``sqlite``, everywhere.

SQLAlchemy calls PostgreSQL ``postgresql``; every comparison with SQLAlchemy's name goes
through :func:`of_sqlalchemy` so that name appears nowhere else.
"""

from __future__ import annotations

from typing import Any, Literal

from tether.core.errors import TetherError

Dialect = Literal["postgres", "sqlite"]
DIALECTS: tuple[Dialect, ...] = ("postgres", "sqlite")
_FROM_SQLALCHEMY: dict[str, Dialect] = {"postgresql": "postgres", "sqlite": "sqlite"}


def of_sqlalchemy(name: str) -> Dialect:
    """Tether's name for SQLAlchemy's dialect ``name``; a clear error for any other database."""
    try:
        return _FROM_SQLALCHEMY[name]
    except KeyError:
        raise TetherError(
            f"unsupported database dialect {name!r}: use PostgreSQL or SQLite"
        ) from None


def of_engine(engine: Any) -> Dialect:
    """The dialect of an SQLAlchemy engine or connection (anything with ``.dialect.name``)."""
    return of_sqlalchemy(engine.dialect.name)
