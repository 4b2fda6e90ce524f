"""The contract every authorization store passes: memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.contract.authz.conftest import CAPS
from tether.authz import AuthzError, Grant, SqlAuthzStore
from tether.authz.errors import InvalidGrantError
from tether.authz.port import AuthzStore

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


async def grant(store: AuthzStore, user: str, cap: str, org: str | None, **kw: object) -> None:
    async with store.transaction() as tx:
        await tx.grant(
            user,
            cap,
            org,
            expires_at=kw.get("expires_at"),  # type: ignore[arg-type]
            granted_by="test",
            now=NOW,
        )
        await tx.changed("tether.capability.granted", {"user": user}, user, org)


async def test_capabilities_sync_is_additive_and_idempotent(store: AuthzStore) -> None:
    await store.sync_capabilities(["trade:view", "partner:kyc-verify"])
    assert await store.capabilities() == frozenset([*CAPS, "partner:kyc-verify"])


async def test_direct_grant_loads_with_exact_expiry(store: AuthzStore) -> None:
    expiry = NOW + timedelta(days=7)
    await grant(store, "alice", "trade:approve", "acme", expires_at=expiry)
    assert await store.load_grants("alice") == [Grant("trade:approve", "acme", expiry)]
    assert await store.load_grants("bob") == []


async def test_regrant_replaces_instead_of_duplicating(store: AuthzStore) -> None:
    await grant(store, "alice", "trade:approve", None, expires_at=NOW + timedelta(days=1))
    await grant(store, "alice", "trade:approve", None)
    assert await store.load_grants("alice") == [Grant("trade:approve", None, None)]


async def test_global_and_org_grants_are_distinct(store: AuthzStore) -> None:
    await grant(store, "alice", "trade:view", None)
    await grant(store, "alice", "trade:view", "acme")
    loaded = sorted(await store.load_grants("alice"), key=lambda g: g.org or "")
    assert loaded == [Grant("trade:view", None), Grant("trade:view", "acme")]


async def test_a_tenant_reads_its_orgs_grants_only(store: AuthzStore) -> None:
    # With tenancy the org is the tenant: neither another org's grants nor grants to every org.
    await grant(store, "alice", "trade:view", None)
    await grant(store, "alice", "trade:view", "acme")
    await grant(store, "alice", "trade:approve", "globex")
    async with store.transaction(tenant="acme") as tx:  # scoped, an ordinary one otherwise
        assert await tx.revoke("alice", "trade:approve", "acme") is False
    assert await store.load_grants("alice", "acme") == [Grant("trade:view", "acme")]
    assert await store.load_grants("alice", "globex") == [Grant("trade:approve", "globex")]
    assert await store.load_grants("alice", "initech") == []
    listed = await store.list_grants(tenant="acme")
    assert [(r.org, r.capability) for r in listed] == [("acme", "trade:view")]
    assert await store.list_grants(tenant="acme", org="globex") == []


async def test_revoke_reports_whether_the_grant_existed(store: AuthzStore) -> None:
    await grant(store, "alice", "trade:view", "acme")
    async with store.transaction() as tx:
        assert await tx.revoke("alice", "trade:view", "globex") is False
        assert await tx.revoke("alice", "trade:view", "acme") is True
    assert await store.load_grants("alice") == []


async def test_role_capabilities_reach_the_user_in_the_role_org(store: AuthzStore) -> None:
    expiry = NOW + timedelta(hours=1)
    async with store.transaction() as tx:
        await tx.define_role("approver", ["trade:approve", "trade:view"])
        assert await tx.role_exists("approver")
        await tx.assign_role(
            "bob", "approver", "globex", expires_at=expiry, granted_by=None, now=NOW
        )
    loaded = sorted(await store.load_grants("bob"), key=lambda g: g.capability)
    assert loaded == [
        Grant("trade:approve", "globex", expiry, "approver"),
        Grant("trade:view", "globex", expiry, "approver"),
    ]
    async with store.transaction() as tx:
        await tx.define_role("approver", ["trade:view"])  # redefining replaces the set
    assert [g.capability for g in await store.load_grants("bob")] == ["trade:view"]
    async with store.transaction() as tx:
        assert await tx.unassign_role("bob", "approver", "globex") is True
    assert await store.load_grants("bob") == []


@pytest.mark.parametrize(
    ("user", "cap", "org"),
    [("mallory", "trade:view", "acme"), ("alice", "trade:view", "initech"), ("alice", "x:y", None)],
)
async def test_writes_naming_unknown_things_are_refused(
    store: AuthzStore, user: str, cap: str, org: str | None
) -> None:
    with pytest.raises(AuthzError):
        async with store.transaction() as tx:
            await tx.grant(user, cap, org, expires_at=None, granted_by=None, now=NOW)


async def test_unknown_role_assignment_is_refused(store: AuthzStore) -> None:
    with pytest.raises(AuthzError):
        async with store.transaction() as tx:
            await tx.assign_role(
                "alice", "ghost", "acme", expires_at=None, granted_by=None, now=NOW
            )


async def test_failed_transaction_leaves_nothing(store: AuthzStore) -> None:
    version = await store.version()

    async def failing_business_step() -> None:
        async with store.transaction() as tx:
            await tx.grant("alice", "trade:view", "acme", expires_at=None, granted_by=None, now=NOW)
            await tx.changed("tether.capability.granted", {}, "alice", "acme")
            raise RuntimeError("business step failed")

    with pytest.raises(RuntimeError):
        await failing_business_step()
    assert await store.load_grants("alice") == []
    assert await store.version() == version


async def test_version_grows_with_each_committed_change(store: AuthzStore) -> None:
    before = await store.version()
    await grant(store, "alice", "trade:view", "acme")
    await grant(store, "bob", "trade:view", "acme")
    assert await store.version() == before + 2


async def test_existence_checks(store: AuthzStore) -> None:
    async with store.transaction() as tx:
        assert await tx.user_exists("alice")
        assert not await tx.user_exists("mallory")
        assert await tx.org_exists("acme")
        assert not await tx.org_exists("initech")
        assert not await tx.role_exists("ghost")


async def test_list_grants_filters_by_user_and_org(store: AuthzStore) -> None:
    await grant(store, "alice", "trade:view", "acme")
    await grant(store, "bob", "trade:view", "globex")
    async with store.transaction() as tx:
        await tx.define_role("viewer", ["trade:view"])
        await tx.assign_role(
            "alice", "viewer", "globex", expires_at=None, granted_by="root", now=NOW
        )
    assert len(await store.list_grants()) == 3
    alice = await store.list_grants(user="alice")
    assert {(r.org, r.capability, r.role) for r in alice} == {
        ("acme", "trade:view", None),
        ("globex", None, "viewer"),
    }
    assert [r.user for r in await store.list_grants(org="globex", user="bob")] == ["bob"]
    assert all(r.granted_at == NOW for r in alice)


async def test_sql_store_writes_in_the_callers_session_without_committing(
    sql_store: SqlAuthzStore,
) -> None:
    store = sql_store
    from sqlalchemy.ext.asyncio import AsyncSession

    async with AsyncSession(store.engine) as session, session.begin():
        async with store.transaction(session) as tx:
            await tx.grant("alice", "trade:view", "acme", expires_at=None, granted_by=None, now=NOW)
        await session.rollback()
    assert await store.load_grants("alice") == []


async def test_concurrent_grants_of_one_capability_all_succeed(store: AuthzStore) -> None:
    # One transaction holds its grant uncommitted while others grant the same: none may fail.
    later = NOW + timedelta(days=1)
    async with store.transaction() as tx:
        await tx.grant("alice", "trade:view", "acme", expires_at=None, granted_by="a", now=NOW)
        others = [
            asyncio.create_task(grant(store, "alice", "trade:view", "acme", expires_at=later))
            for _ in range(3)
        ]
        await asyncio.sleep(0.05)  # let the others reach the row the first one holds
    await asyncio.gather(*others)
    [record] = await store.list_grants(user="alice")
    assert (record.capability, record.org, record.expires_at) == ("trade:view", "acme", later)


async def test_concurrent_role_definitions_all_succeed(store: AuthzStore) -> None:
    async def define(names: list[str]) -> None:
        async with store.transaction() as tx:
            await tx.define_role("trader", names)

    await asyncio.gather(*(define(["trade:view", "trade:approve"]) for _ in range(4)))
    await define(["trade:view"])
    async with store.transaction() as tx:
        await tx.assign_role("bob", "trader", "acme", expires_at=None, granted_by=None, now=NOW)
    assert sorted(g.capability for g in await store.load_grants("bob")) == ["trade:view"]


async def test_an_expiry_past_what_utc_can_hold_is_refused(sql_store: SqlAuthzStore) -> None:
    last = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-14)))
    with pytest.raises(InvalidGrantError, match="past the last time"):
        async with sql_store.transaction() as tx:
            await tx.grant("alice", "trade:view", None, expires_at=last, granted_by=None, now=NOW)
