"""Grant changes: bad input refused, events emitted, cache invalidated."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tether.authz import (
    Authz,
    GrantCache,
    InvalidGrantError,
    MemoryAuthzStore,
    UnknownCapabilityError,
    UnknownSubjectError,
)
from tether.authz.engine import UserGrants
from tether.core.clock import FrozenClock


async def test_grant_to_unknown_user_or_org_is_refused(authz: Authz) -> None:
    with pytest.raises(UnknownSubjectError, match="unknown user 'mallory'"):
        await authz.grant("mallory", "trade:view", "acme")
    with pytest.raises(UnknownSubjectError, match="unknown org 'initech'"):
        await authz.grant("alice", "trade:view", "initech")
    with pytest.raises(UnknownSubjectError, match="unknown role 'ghost'"):
        await authz.assign_role("alice", "ghost", "acme")


async def test_expiry_in_the_past_or_now_or_naive_is_refused(
    authz: Authz, clock: FrozenClock
) -> None:
    for when in (clock.now() - timedelta(seconds=1), clock.now()):
        with pytest.raises(InvalidGrantError, match="not in the future"):
            await authz.grant("alice", "trade:view", "acme", expires_at=when)
    with pytest.raises(InvalidGrantError, match="no time zone"):
        await authz.grant("alice", "trade:view", "acme", expires_at=datetime(2030, 1, 1))
    assert await authz.store.list_grants() == []


async def test_roles_refuse_unknown_capabilities(authz: Authz) -> None:
    with pytest.raises(UnknownCapabilityError):
        await authz.define_role("trader", ["trade:sell"])


async def test_bad_identifiers_are_refused(authz: Authz) -> None:
    with pytest.raises(InvalidGrantError):
        await authz.add_user("")
    with pytest.raises(InvalidGrantError):
        await authz.add_org("a\nb")


async def test_every_change_emits_an_event(authz: Authz, store: MemoryAuthzStore) -> None:
    await authz.grant("alice", "trade:view", "acme", granted_by="root")
    assert await authz.revoke("alice", "trade:view", "acme", revoked_by="root")
    assert not await authz.revoke("alice", "trade:view", "acme")  # nothing to revoke: no event
    kinds = [(e.type, e.user, e.org) for e in store.events]
    assert kinds == [
        ("tether.capability.granted", "alice", "acme"),
        ("tether.capability.revoked", "alice", "acme"),
    ]
    assert store.events[0].payload == {
        "user": "alice",
        "org": "acme",
        "capability": "trade:view",
        "expires_at": None,
        "by": "root",
    }


async def test_revoke_drops_the_cached_entry_at_once(authz: Authz) -> None:
    await authz.grant("alice", "trade:view", "acme")
    assert await authz.has("alice", "trade:view", "acme")
    await authz.revoke("alice", "trade:view", "acme")
    assert not await authz.has("alice", "trade:view", "acme")


def test_a_load_overlapping_an_invalidation_is_not_cached() -> None:
    cache = GrantCache()
    epoch = cache.epoch()
    cache.invalidate("alice")  # a revoke lands while the load is in flight
    cache.put(UserGrants("alice", []), epoch)
    assert cache.get("alice") is None
    cache.put(UserGrants("alice", []), cache.epoch())
    assert cache.get("alice") is not None


def test_cache_evicts_the_oldest_entry_when_full() -> None:
    cache = GrantCache(max_users=2)
    for user in ("a", "b", "c"):
        cache.put(UserGrants(user, []), cache.epoch())
    assert cache.get("a") is None
    assert cache.get("c") is not None
    assert len(cache) == 2


async def test_version_poll_clears_the_cache_when_another_writer_changed_grants(
    authz: Authz, store: MemoryAuthzStore
) -> None:
    from tether.authz import InvalidationWatcher

    assert authz.cache is not None
    watcher = InvalidationWatcher(store, authz.cache, interval=0.01)
    await watcher.run_once()  # records the version
    await authz.grant("alice", "trade:view", "acme")
    assert await authz.has("alice", "trade:view", "acme")
    other = Authz(store, authz.registry, clock=authz.clock)  # another instance, its own cache
    await other.revoke("alice", "trade:view", "acme")
    assert await authz.has("alice", "trade:view", "acme")  # stale until the poll runs
    await watcher.run_once()
    assert watcher.polls_that_cleared == 1
    assert not await authz.has("alice", "trade:view", "acme")


def test_decision_memo_stays_bounded_whatever_orgs_requests_name() -> None:
    from datetime import UTC, datetime

    from tether.authz import Grant

    snapshot = UserGrants("alice", [Grant("trade:view", None)])
    now = datetime.now(UTC)
    for i in range(5000):
        assert snapshot.match("trade:view", f"org-{i}", now) is not None
    assert len(snapshot._candidates) <= 1024
