"""The reference app's policy table, run on the in-memory store with a pinned clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from examples.tradedesk.authz import REGISTRY, ROLES, Cap

from tether.authz import Authz, MemoryAuthzStore
from tether.authz.policy import assert_policy
from tether.core.clock import FrozenClock

WEEK_END = datetime(2026, 1, 8, tzinfo=UTC)


async def test_tradedesk_policy_table() -> None:
    authz = Authz(MemoryAuthzStore(), REGISTRY, clock=FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)))
    await authz.sync()
    for user in ("alice", "carol", "dana", "erin", "root"):
        await authz.add_user(user)
    for org in ("acme", "globex"):
        await authz.add_org(org)
    for role, caps in ROLES.items():
        await authz.define_role(role, list(caps))
    await authz.assign_role("alice", "trader", "acme")
    await authz.assign_role("carol", "approver", "acme")
    await authz.grant("carol", Cap.TRADE_APPROVE_HIGH_VALUE, "acme", expires_at=WEEK_END)
    await authz.assign_role("dana", "compliance", "acme")
    await authz.assign_role("dana", "auditor", "globex", expires_at=WEEK_END)
    await authz.grant("erin", "trade:*", "globex")
    await authz.grant("root", "admin:all")
    await assert_policy(authz, (Path(__file__).parent / "tradedesk_policy.txt").read_text())
