"""An Authz over the in-memory store, with a pinned clock and a small registry."""

from __future__ import annotations

from enum import StrEnum

import pytest

from tether.authz import Authz, MemoryAuthzStore, Registry
from tether.core.clock import FrozenClock


class Cap(StrEnum):
    TRADE_APPROVE = "trade:approve"
    TRADE_VIEW = "trade:view"
    AVAILABILITY_POST = "availability:post"
    AVAILABILITY_EDIT_OWN = "availability:edit:own"
    AVAILABILITY_EDIT_ANY = "availability:edit:any"
    PARTNER_KYC_VERIFY = "partner:kyc-verify"


REGISTRY = Registry(Cap)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def store() -> MemoryAuthzStore:
    return MemoryAuthzStore()


@pytest.fixture
async def authz(store: MemoryAuthzStore, clock: FrozenClock) -> Authz:
    made = Authz(store, REGISTRY, clock=clock)
    await made.sync()
    for user in ("alice", "bob", "root"):
        await made.add_user(user)
    for org in ("acme", "globex"):
        await made.add_org(org)
    return made
