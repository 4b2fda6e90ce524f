"""Every decision rule, on the in-memory store with a pinned clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tether.authz import Authz, Forbidden, Reason, UnknownCapabilityError
from tether.core.clock import FrozenClock


async def test_grant_allows_in_its_org_and_denies_in_another(authz: Authz) -> None:
    await authz.grant("alice", "trade:approve", "acme")
    assert await authz.has("alice", "trade:approve", "acme")
    assert not await authz.has("alice", "trade:approve", "globex")
    assert not await authz.has("alice", "trade:approve")  # no org: only global grants count
    decision = await authz.explain("alice", "trade:approve", "globex")
    assert decision.reason is Reason.OTHER_ORG
    assert decision.other_orgs == ("acme",)
    assert "granted only in other org(s) acme" in str(decision)


async def test_global_grant_applies_in_every_org(authz: Authz) -> None:
    await authz.grant("alice", "trade:view")
    assert await authz.has("alice", "trade:view", "acme")
    assert await authz.has("alice", "trade:view", "globex")
    assert await authz.has("alice", "trade:view")


async def test_require_raises_403_with_the_exact_message(authz: Authz) -> None:
    with pytest.raises(Forbidden) as caught:
        await authz.require("bob", "trade:approve", "acme")
    assert str(caught.value) == "Missing capability: trade:approve"
    assert caught.value.status_code == 403


async def test_expiry_one_second_before_and_after_even_when_cached(
    authz: Authz, clock: FrozenClock
) -> None:
    expiry = clock.now() + timedelta(days=7)
    await authz.grant("alice", "trade:approve", "acme", expires_at=expiry)
    clock.set(expiry - timedelta(seconds=1))
    assert await authz.has("alice", "trade:approve", "acme")
    assert authz.cache is not None
    assert len(authz.cache) == 1
    clock.set(expiry)
    assert not await authz.has("alice", "trade:approve", "acme")  # at the boundary: expired
    clock.set(expiry + timedelta(seconds=1))
    assert not await authz.has("alice", "trade:approve", "acme")
    assert authz.cache.hits >= 2  # decided from the cache, not reloaded
    decision = await authz.explain("alice", "trade:approve", "acme")
    assert decision.reason is Reason.EXPIRED
    assert decision.expired_at == expiry
    assert f"expired at {expiry.isoformat()}" in str(decision)


async def test_super_admin_implies_everything_in_its_scope(authz: Authz) -> None:
    await authz.grant("root", "admin:all", "acme")
    for cap in ("trade:approve", "availability:edit:any", "partner:kyc-verify"):
        assert await authz.has("root", cap, "acme")
        assert not await authz.has("root", cap, "globex")
    decision = await authz.explain("root", "trade:approve", "acme")
    assert decision.grant is not None
    assert decision.grant.capability == "admin:all"


async def test_wildcard_covers_every_action_of_its_resource_only(authz: Authz) -> None:
    await authz.grant("alice", "trade:*", "acme")
    assert await authz.has("alice", "trade:approve", "acme")
    assert await authz.has("alice", "trade:view", "acme")
    assert not await authz.has("alice", "availability:post", "acme")


async def test_no_grant_is_explained(authz: Authz) -> None:
    decision = await authz.explain("bob", "trade:view", "acme")
    assert not decision.allowed
    assert decision.reason is Reason.NO_GRANT
    assert str(decision) == "denied: bob trade:view in acme: no grant"


async def test_unknown_capability_raises_instead_of_denying(authz: Authz) -> None:
    with pytest.raises(UnknownCapabilityError):
        await authz.has("alice", "trade:aprove", "acme")
    with pytest.raises(UnknownCapabilityError):
        await authz.grant("alice", "trade:aprove", "acme")


async def test_any_allows_without_asking_about_ownership(authz: Authz) -> None:
    await authz.grant("alice", "availability:edit:any", "acme")

    def never() -> bool:
        raise AssertionError("ownership lookup not needed for :any")

    decision = await authz.check_owned("alice", "availability:edit", "acme", never)
    assert decision.allowed
    assert decision.capability == "availability:edit:any"


async def test_own_allows_only_the_owner(authz: Authz) -> None:
    await authz.grant("alice", "availability:edit:own", "acme")
    mine = await authz.check_owned("alice", "availability:edit", "acme", lambda: True)
    assert mine.allowed
    assert mine.grant is not None
    assert mine.grant.capability == "availability:edit:own"

    async def not_mine() -> bool:
        return False

    theirs = await authz.check_owned("alice", "availability:edit", "acme", not_mine)
    assert not theirs.allowed
    assert theirs.reason is Reason.NOT_OWNER
    with pytest.raises(Forbidden, match=r"^Missing capability: availability:edit:any$"):
        await authz.require_owned("alice", "availability:edit", "acme", not_mine)
    with pytest.raises(Forbidden, match=r"^Missing capability: availability:edit:own$"):
        await authz.require_owned("bob", "availability:edit", "acme", lambda: True)


async def test_role_grants_and_their_expiry(authz: Authz, clock: FrozenClock) -> None:
    await authz.define_role("auditor", ["trade:view", "partner:kyc-verify"])
    week = clock.now() + timedelta(weeks=1)
    await authz.assign_role("bob", "auditor", "globex", expires_at=week)
    assert await authz.has("bob", "trade:view", "globex")
    decision = await authz.explain("bob", "partner:kyc-verify", "globex")
    assert decision.grant is not None
    assert decision.grant.role == "auditor"
    clock.set(week)
    assert not await authz.has("bob", "trade:view", "globex")
    assert await authz.unassign_role("bob", "auditor", "globex")
    assert not await authz.unassign_role("bob", "auditor", "globex")


async def test_without_cache_every_decision_reads_the_store(authz: Authz) -> None:
    uncached = Authz(authz.store, authz.registry, clock=authz.clock, use_cache=False)
    await authz.grant("alice", "trade:view", "acme")
    assert await uncached.has("alice", "trade:view", "acme")
    await authz.revoke("alice", "trade:view", "acme")
    assert not await uncached.has("alice", "trade:view", "acme")
    assert uncached.cache is None
