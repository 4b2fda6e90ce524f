"""Row-level security on capability grants, through the Python API: with tenancy on, an org is a
tenant; a decision, a listing, a revoke or a purge for tenant A reaches none of tenant B's
grants; an unscoped transaction sees no grant at all; a grant to every org is the owner's and
applies to no tenant; the super-admin capability works only where it was granted; a bad
tenant id is refused before anything is written; one Authz's cache never answers a tenant
with another tenant's grants, and invalidation reaches every tenant's entry of a user."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.tenancy import TenancyDb, authz_on, seed_grants, tenancy_database
from tether.authz import (
    Authz,
    InvalidationWatcher,
    InvalidGrantError,
    Reason,
    SqlAuthzStore,
    UnknownSubjectError,
    listen_dsn_of,
)
from tether.tenancy import tenant_scope

pytestmark = pytest.mark.timeout(60)

GRANTS = {
    "tether_authz_user_capabilities": "SELECT count(*) FROM tether_authz_user_capabilities",
    "tether_authz_user_roles": "SELECT count(*) FROM tether_authz_user_roles",
    "tether_authz_orgs": "SELECT count(*) FROM tether_authz_orgs",
}


async def counts(dsn: str, tenant: str | None = None) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            if tenant is not None:
                await tenant_scope(conn, tenant)
            return {table: int(await conn.fetchval(sql)) for table, sql in GRANTS.items()}
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def grants() -> Iterator[TenancyDb]:
    """One seeded database for the module (a fresh one costs seconds): tests leave it as
    they found it."""
    with tenancy_database() as db:
        asyncio.run(seed_grants(db))
        yield db


async def test_a_tenant_decides_and_lists_with_its_own_grants_only(grants: TenancyDb) -> None:
    async with authz_on(grants.app) as app:
        assert await app.has("asha", "trade:approve", "acme")
        assert not await app.has("asha", "trade:approve", "globex")
        assert await app.has("asha", "trade:view", "globex")
        assert not await app.has("asha", "trade:view", "acme")
        assert await app.has("ravi", "availability:post", "globex")
        assert not await app.has("ravi", "availability:post", "acme")
        # acme's decision does not even learn that asha holds it elsewhere.
        assert (await app.explain("asha", "trade:view", "acme")).reason is Reason.NO_GRANT

        def listed(records: list[object]) -> set[tuple[object, ...]]:
            return {(r.user, r.org, r.capability or r.role) for r in records}  # type: ignore[attr-defined]

        acme = await app.store.list_grants(tenant="acme")
        assert listed(acme) == {("asha", "acme", "trade:approve"), ("meera", "acme", "admin:all")}
        globex = await app.store.list_grants(tenant="globex")
        assert listed(globex) == {("asha", "globex", "trade:view"), ("ravi", "globex", "trader")}
        assert await app.store.list_grants(tenant="acme", org="globex") == []
        assert await app.store.list_grants(tenant="acme", user="ravi") == []
        # Unscoped, the application role lists nothing (fails closed)...
        assert await app.store.list_grants() == []
    # ...and the owner lists everything, the platform-wide grant included.
    async with authz_on(grants.admin, tenancy=False) as owner:
        assert len(await owner.store.list_grants()) == 5


async def test_sql_as_the_application_role_sees_one_tenant_or_nothing(grants: TenancyDb) -> None:
    db = grants
    assert await counts(db.app, "acme") == {
        "tether_authz_user_capabilities": 2,
        "tether_authz_user_roles": 0,
        "tether_authz_orgs": 1,
    }
    assert await counts(db.app, "globex") == {
        "tether_authz_user_capabilities": 1,
        "tether_authz_user_roles": 1,
        "tether_authz_orgs": 1,
    }
    assert await counts(db.app) == dict.fromkeys(GRANTS, 0)  # no scope: nothing
    assert await counts(db.relay) == {
        "tether_authz_user_capabilities": 4,
        "tether_authz_user_roles": 1,
        "tether_authz_orgs": 2,
    }


async def test_purge_and_revoke_reach_only_the_scoped_tenant(grants: TenancyDb) -> None:
    db = grants
    conn = await asyncpg.connect(db.app)
    try:
        # Purging every grant in acme's scope deletes acme's, and only those (rolled back, so
        # the module's database stays as seeded).
        tx = conn.transaction()
        await tx.start()
        await tenant_scope(conn, "acme")
        purged = await conn.fetch("DELETE FROM tether_authz_user_capabilities RETURNING org_id")
        assert sorted(r["org_id"] for r in purged) == ["acme", "acme"]
        assert await conn.fetch("DELETE FROM tether_authz_user_roles RETURNING org_id") == []
        await tx.rollback()
    finally:
        await conn.close()
    async with authz_on(db.app) as app:
        # A session scoped to acme cannot revoke globex's grant: the scope is refused.
        assert isinstance(app.store, SqlAuthzStore)
        async with AsyncSession(app.store.engine) as session, session.begin():
            await tenant_scope(session, "acme")
            with pytest.raises(DBAPIError, match="scoped to tenant acme, not globex"):
                await app.revoke("asha", "trade:view", "globex", session=session)
        assert await app.has("asha", "trade:view", "globex")
        # Revoking "in acme" what exists only in globex finds nothing.
        assert not await app.revoke("asha", "trade:view", "acme")
        assert await app.has("asha", "trade:view", "globex")


async def test_grants_to_every_org_and_the_super_admin_stay_explicit(grants: TenancyDb) -> None:
    db = grants
    async with authz_on(db.app) as app:
        # The platform-wide admin:all of ops applies to no tenant under tenancy.
        assert not await app.has("ops", "trade:approve", "acme")
        # meera's admin:all holds in acme, where it was granted, and nowhere else.
        assert await app.has("meera", "trade:approve", "acme")
        assert "admin:all" in str(await app.explain("meera", "trade:view", "acme"))
        assert not await app.has("meera", "trade:approve", "globex")
        # The application cannot grant across tenants: no org is refused before writing...
        with pytest.raises(InvalidGrantError, match="tenancy is on"):
            await app.grant("asha", "admin:all")
        # ...and the database refuses such a row from the application role in any scope.
        conn = await asyncpg.connect(db.app)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                async with conn.transaction():
                    await tenant_scope(conn, "acme")
                    await conn.execute(
                        "INSERT INTO tether_authz_user_capabilities (user_id, org_id, capability)"
                        " VALUES ('asha', NULL, 'admin:all')"
                    )
        finally:
            await conn.close()
    # Under tenancy even the owner's decisions stay in the tenant: no global grant, no other org.
    async with authz_on(db.admin) as owner_tenancy:
        assert not await owner_tenancy.has("ops", "trade:approve", "acme")
        assert not await owner_tenancy.has("meera", "trade:approve", "globex")
    # Without tenancy the owner's platform-wide grant is what it always was.
    async with authz_on(db.admin, tenancy=False) as owner:
        assert await owner.has("ops", "trade:approve", "globex")


async def test_what_every_tenant_shares_is_the_owners_to_change(grants: TenancyDb) -> None:
    # Role definitions mean the same in every tenant, deleting a user would cascade to its
    # grants in every tenant, and the user registry lists every tenant's users: the
    # application role (as docs/tenancy.md grants it) can redefine, delete and list none.
    async with authz_on(grants.app) as app:
        with pytest.raises(DBAPIError, match="permission denied"):
            await app.define_role("trader", ["trade:approve"])
        assert await app.has("ravi", "availability:post", "globex")  # unchanged
    conn = await asyncpg.connect(grants.app)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.execute("DELETE FROM tether_authz_users WHERE id = 'asha'")
        # The user registry holds every tenant's user ids: the application adds, never lists.
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.fetch("SELECT id FROM tether_authz_users")
    finally:
        await conn.close()
    async with authz_on(grants.app) as app:
        await app.add_user("asha")  # already there: nothing to read, nothing refused
        with pytest.raises(UnknownSubjectError, match="unknown user"):
            await app.grant("nobody", "trade:view", "acme")


async def test_a_bad_tenant_id_is_refused_before_anything_is_written(grants: TenancyDb) -> None:
    db = grants
    before = await counts(db.relay)
    events = "SELECT count(*) FROM tether_outbox"
    relay = await asyncpg.connect(db.relay)
    try:
        outbox_before = await relay.fetchval(events)
        async with authz_on(db.admin) as app:  # the owner: only validation can stop it
            for bad in ("acme corp", "", "../x", "x" * 300, None):
                await refused_everywhere(app, bad)
        assert await counts(db.relay) == before
        assert await relay.fetchval(events) == outbox_before
    finally:
        await relay.close()


async def refused_everywhere(app: Authz, bad: str | None) -> None:
    changes = (
        app.grant("asha", "trade:view", bad),
        app.revoke("asha", "trade:approve", bad),
        app.assign_role("asha", "trader", bad),  # type: ignore[arg-type]
        app.unassign_role("ravi", "trader", bad),  # type: ignore[arg-type]
        app.add_org(bad),  # type: ignore[arg-type]
    )
    for change in changes:
        with pytest.raises(InvalidGrantError, match="tenant"):
            await change
    assert not await app.has("asha", "trade:approve", bad)
    refused = await app.explain("asha", "trade:approve", bad)
    assert refused.reason is Reason.NO_TENANT and "no valid org" in str(refused)


async def test_grant_events_land_in_the_grants_tenant(grants: TenancyDb) -> None:
    db = grants
    sql = (
        "SELECT count(*) FROM tether_outbox WHERE type LIKE 'tether.capability.%'"
        " AND aggregate_id IN ('asha', 'meera', 'ravi')"
    )
    conn = await asyncpg.connect(db.app)
    try:
        for tenant, n in (("acme", 2), ("globex", 2)):
            async with conn.transaction():
                await tenant_scope(conn, tenant)
                assert await conn.fetchval(sql) == n
        assert await conn.fetchval(sql) == 0
    finally:
        await conn.close()


async def test_the_cache_keeps_tenants_apart_and_invalidation_reaches_each(
    grants: TenancyDb,
) -> None:
    db = grants
    async with authz_on(db.app) as writer, authz_on(db.app) as reader:
        await writer.add_user("zed")
        await writer.grant("zed", "trade:view", "globex")
        assert isinstance(reader.store, SqlAuthzStore) and reader.cache is not None
        listen = listen_dsn_of(reader.store)
        watcher = InvalidationWatcher(reader.store, reader.cache, listen_dsn=listen, interval=0.05)
        await watcher.start()
        try:
            assert await reader.has("zed", "trade:view", "globex")
            assert not await reader.has("zed", "trade:view", "acme")  # not globex's entry
            assert len(reader.cache) == 2
            await writer.grant("zed", "trade:view", "acme")
            async with asyncio.timeout(10):
                while not await reader.has("zed", "trade:view", "acme"):
                    await asyncio.sleep(0.02)
            await writer.revoke("zed", "trade:view", "globex")
            async with asyncio.timeout(10):
                while await reader.has("zed", "trade:view", "globex"):
                    await asyncio.sleep(0.02)
            assert await reader.has("zed", "trade:view", "acme")
        finally:
            await watcher.stop()
            await writer.revoke("zed", "trade:view", "acme")
