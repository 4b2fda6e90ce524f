"""The current PostgreSQL schema: one SQL file per component under ``schema/``, applied in order.

Alembic migrations under ``tether/store/migrations`` must produce exactly this schema;
``tests/integration/test_migrations.py`` compares the two.
"""

from __future__ import annotations

from importlib import resources

_PACKAGE = "tether.store.postgres"


def schema_files() -> list[str]:
    folder = resources.files(_PACKAGE).joinpath("schema")
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))


def full_schema_sql() -> str:
    """Every component's DDL, in order, as one script (for people who don't use Alembic)."""
    folder = resources.files(_PACKAGE).joinpath("schema")
    return "\n".join(folder.joinpath(name).read_text() for name in schema_files())
