"""Authz with tenancy on (the org is the tenant), on the memory store: decisions see one
tenant's grants and are cached per tenant; a check without a valid tenant is denied without a
load; a change without one is refused before the store is touched; invalidating a user drops
every tenant's entry; the cache stays bounded however many tenants one user is asked about."""

from __future__ import annotations

import pytest

from tether.authz import (
    Authz,
    GrantCache,
    InvalidGrantError,
    MemoryAuthzStore,
    Reason,
    Registry,
)
from tether.authz.engine import UserGrants
from tether.authz.model import Grant

REGISTRY = Registry(["trade:approve", "trade:view", "trade:edit:own", "trade:edit:any"])


class CountingStore(MemoryAuthzStore):
    def __init__(self) -> None:
        super().__init__()
        self.loads: list[tuple[str, str | None]] = []

    async def load_grants(self, user: str, tenant: str | None = None) -> list[Grant]:
        self.loads.append((user, tenant))
        return await super().load_grants(user, tenant)


@pytest.fixture
async def store() -> CountingStore:
    store = CountingStore()
    setup = Authz(store, REGISTRY)
    await setup.sync()
    await setup.add_user("asha")
    for org in ("acme", "globex"):
        await setup.add_org(org)
    await setup.grant("asha", "trade:approve", "acme")
    await setup.grant("asha", "trade:view", "globex")
    await setup.grant("asha", "admin:all")  # every org: applies to no tenant under tenancy
    store.loads.clear()
    return store


async def test_decisions_see_one_tenant_and_are_cached_per_tenant(store: CountingStore) -> None:
    authz = Authz(store, REGISTRY, tenancy=True)
    assert await authz.has("asha", "trade:approve", "acme")
    assert not await authz.has("asha", "trade:view", "acme")
    assert await authz.has("asha", "trade:view", "globex")
    assert not await authz.has("asha", "trade:approve", "globex")
    assert store.loads == [("asha", "acme"), ("asha", "globex")]  # one load per tenant
    assert authz.cache is not None and len(authz.cache) == 2
    assert (await authz.explain("asha", "trade:view", "acme")).reason is Reason.NO_GRANT


async def test_no_valid_tenant_is_denied_without_a_load(store: CountingStore) -> None:
    authz = Authz(store, REGISTRY, tenancy=True)
    for bad in (None, "", "acme corp", "../x", "x" * 300):
        assert not await authz.has("asha", "trade:approve", bad)
        decision = await authz.explain("asha", "trade:approve", bad)
        assert decision.reason is Reason.NO_TENANT
        owned = await authz.check_owned("asha", "trade:edit", bad, lambda: True)
        assert not owned.allowed and owned.reason is Reason.NO_TENANT
    assert store.loads == []


async def test_a_change_without_a_valid_tenant_is_refused_before_the_store(
    store: CountingStore,
) -> None:
    authz = Authz(store, REGISTRY, tenancy=True)
    version = await store.version()
    for bad in (None, "", "acme corp"):
        with pytest.raises(InvalidGrantError, match="tenancy is on"):
            await authz.grant("asha", "trade:view", bad)
        with pytest.raises(InvalidGrantError, match="tenancy is on"):
            await authz.revoke("asha", "trade:approve", bad)
    assert await store.version() == version


async def test_a_change_invalidates_every_tenant_entry_of_the_user(store: CountingStore) -> None:
    authz = Authz(store, REGISTRY, tenancy=True)
    assert not await authz.has("asha", "trade:view", "acme")
    assert await authz.has("asha", "trade:view", "globex")
    await authz.grant("asha", "trade:view", "acme")
    assert authz.cache is not None and len(authz.cache) == 0
    assert await authz.has("asha", "trade:view", "acme")


def test_the_cache_bound_holds_across_tenants_of_one_user() -> None:
    cache = GrantCache(max_users=3)
    for tenant in ("a", "b", "c", "d", "e"):
        cache.put(UserGrants("asha", [], tenant), cache.epoch())
        assert len(cache) <= 3
    cache.put(UserGrants("ravi", [], "a"), cache.epoch())
    assert len(cache) <= 3 and cache.get("ravi", "a") is not None
    cache.invalidate("ravi")
    assert cache.get("ravi", "a") is None
