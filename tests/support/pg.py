"""A fresh PostgreSQL database per test, cloned from a template built once from the schema.

Cloning a template (``CREATE DATABASE ... TEMPLATE``) takes tens of milliseconds and isolates
tests completely. The template's name carries a hash of the schema, so a schema change builds a
new one; an advisory lock keeps concurrent test runs from building it twice.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tests.support.services import PG_ADMIN_DSN
from tether.store.postgres import ddl as schema


def _dsn_for(dbname: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{dbname}"


def template_name() -> str:
    digest = hashlib.sha256(schema.full_schema_sql().encode()).hexdigest()[:12]
    return f"tether_tpl_{digest}"


def ensure_template() -> str:
    name = template_name()
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute("SELECT pg_advisory_lock(724100)")
        try:
            exists = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                admin.execute(f'CREATE DATABASE "{name}"')
                with psycopg.connect(_dsn_for(name), autocommit=True) as conn:
                    conn.execute(schema.full_schema_sql())  # type: ignore[arg-type]
        finally:
            admin.execute("SELECT pg_advisory_unlock(724100)")
    return name


@contextmanager
def fresh_database(template: str | None = None) -> Iterator[str]:
    """Yield the DSN of a new database (with Tether's schema unless ``template='template0'``)."""
    tpl = template or ensure_template()
    name = f"tether_t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"')
    try:
        yield _dsn_for(name)
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
