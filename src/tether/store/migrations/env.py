"""Alembic environment: online migrations only, on Tether's own version table."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from tether.store.migrations import VERSION_TABLE

url = context.config.get_main_option("sqlalchemy.url")
if url is None:  # pragma: no cover - set by tether.store.migrations.config
    raise RuntimeError("sqlalchemy.url is not set")
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, version_table=VERSION_TABLE, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
