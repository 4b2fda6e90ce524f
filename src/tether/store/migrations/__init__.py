"""Alembic migrations for Tether's PostgreSQL schema, runnable without an alembic.ini.

Each revision applies one frozen SQL file from ``sql/``; ``schema/`` holds the current schema.
Tether keeps its own version table so it never collides with the application's Alembic history.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config

VERSION_TABLE = "tether_alembic_version"


def sync_url(dsn: str) -> str:
    """Turn any ``postgresql://`` DSN into the SQLAlchemy URL Alembic runs on (psycopg 3)."""
    for prefix in (
        "postgresql+asyncpg://",
        "postgresql+psycopg://",
        "postgresql://",
        "postgres://",
    ):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    from tether.core.errors import ConfigError

    raise ConfigError(
        f"not a PostgreSQL DSN (expected postgresql://...): {dsn.rsplit('@', maxsplit=1)[-1]!r}"
    )


def config(dsn: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(str(resources.files(__name__)))))
    cfg.set_main_option("sqlalchemy.url", sync_url(dsn).replace("%", "%%"))
    return cfg


def upgrade(dsn: str, revision: str = "head") -> None:
    command.upgrade(config(dsn), revision)


def downgrade(dsn: str, revision: str) -> None:
    command.downgrade(config(dsn), revision)


def read_sql(name: str) -> str:
    return resources.files(__name__).joinpath("sql", name).read_text()
