"""Roles for row-level security tests: an application role subject to the tenant policies and
a relay role that bypasses them, in a fresh database, both dropped afterwards.

Roles are cluster-wide, so their names are unique per test; trust authentication lets a test
connect as either (``postgresql://<role>@host/db``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import psycopg

from tests.support import pg
from tests.support.services import PG_ADMIN_DSN
from tether.authz import Authz, Registry, SqlAuthzStore
from tether.wiring import OutboxEventWriter

# Every table with a tenant policy: the application role reads and writes them, scoped.
TABLES = (
    "tether_outbox",
    "tether_outbox_keys",
    "tether_idempotency",
    "tether_items",
    "tether_outbox_archive",
    "tether_authz_orgs",
    "tether_authz_user_roles",
    "tether_authz_user_capabilities",
    "tether_jobs",
    "tether_webhook_endpoints",
    "tether_webhook_deliveries",
    "tether_webhook_attempts",
)
# Operator data without a policy, granted to no application role (docs/tenancy.md): cron ticks
# and the daily counts of recovered jobs. The fixtures grant them to the relay's role only.
OPERATOR = ("tether_job_ticks", "tether_job_recoveries")
# The capability tables every tenant shares, with what the application role may do there
# (docs/tenancy.md): register capability names and users (not list them), read role
# definitions, bump the change counter. Defining roles, and deleting users, is the owner's.
SHARED = {
    "tether_authz_capabilities": "SELECT, INSERT",
    "tether_authz_users": "INSERT",
    "tether_authz_roles": "SELECT",
    "tether_authz_role_capabilities": "SELECT",
    "tether_authz_version": "SELECT, UPDATE",
}


@dataclass(frozen=True, slots=True)
class TenancyDb:
    admin: str  # the owner (superuser): migrations, fixtures
    app: str  # an application role: row-level security applies
    relay: str  # a BYPASSRLS role: sees every tenant, as the relay does


def _as(dsn: str, role: str) -> str:
    scheme, _, rest = dsn.partition("://")
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


@contextmanager
def tenancy_database(*, enabled: bool = True) -> Iterator[TenancyDb]:
    suffix = uuid.uuid4().hex[:10]
    app, relay = f"tether_app_{suffix}", f"tether_relay_{suffix}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{app}" LOGIN')
        admin.execute(f'CREATE ROLE "{relay}" LOGIN BYPASSRLS')
    try:
        with pg.fresh_database() as dsn:
            with psycopg.connect(dsn, autocommit=True) as conn:
                if enabled:
                    conn.execute("SELECT tether_tenancy(true)")
                for role in (app, relay):
                    for table in TABLES:
                        conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{role}"')
                    for table, rights in SHARED.items():
                        conn.execute(f'GRANT {rights} ON {table} TO "{role}"')
                for table in OPERATOR:
                    conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{relay}"')
            yield TenancyDb(admin=dsn, app=_as(dsn, app), relay=_as(dsn, relay))
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{app}"')
            admin.execute(f'DROP ROLE IF EXISTS "{relay}"')


REGISTRY = Registry(["trade:approve", "trade:view", "availability:post"])


@asynccontextmanager
async def authz_on(dsn: str, *, tenancy: bool = True) -> AsyncIterator[Authz]:
    store = SqlAuthzStore.from_url(dsn, events=OutboxEventWriter())
    try:
        yield Authz(store, REGISTRY, tenancy=tenancy)
    finally:
        await store.close()


async def seed_grants(db: TenancyDb) -> None:
    """Grants in two tenants: acme (asha trade:approve, meera admin:all), globex (asha
    trade:view, ravi the role trader), and the owner's admin:all to ops in every org."""
    # The owner's part: capability names, role definitions, users, and a platform-wide grant.
    async with authz_on(db.admin, tenancy=False) as owner:
        await owner.sync()
        await owner.define_role("trader", ["availability:post", "trade:view"])
        for user in ("asha", "ravi", "ops", "meera"):
            await owner.add_user(user)
        await owner.grant("ops", "admin:all")  # every org: no tenant's
    # The application's part, as the role row-level security applies to.
    async with authz_on(db.app) as app:
        for org in ("acme", "globex"):
            await app.add_org(org)
        await app.grant("asha", "trade:approve", "acme")
        await app.grant("meera", "admin:all", "acme")
        await app.grant("asha", "trade:view", "globex")
        await app.assign_role("ravi", "trader", "globex")
