"""Capability-based authorization in one file, on SQLite: no services needed.

Run:  .venv/bin/python examples/authz_quickstart.py
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from tether.authz import Authz, Forbidden, Registry, SqlAuthzStore
from tether.core.clock import FrozenClock


# 1. Declare every capability in code. Names are resource:action[:modifier].
class Cap(StrEnum):
    AVAILABILITY_POST = "availability:post"
    AVAILABILITY_EDIT_OWN = "availability:edit:own"
    AVAILABILITY_EDIT_ANY = "availability:edit:any"
    TRADE_APPROVE = "trade:approve"
    TRADE_APPROVE_HIGH_VALUE = "trade:approve-high-value"


async def main(db: Path) -> None:
    # 2. A store (SQLite here; SqlAuthzStore.from_url("postgresql://...") in production),
    #    an Authz over it, and the registry synchronized into the capabilities table.
    store = SqlAuthzStore.from_url(f"sqlite+aiosqlite:///{db}")
    await store.create_sqlite_schema()
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    authz = Authz(store, Registry(Cap), clock=clock)
    await authz.sync()

    # 3. Users and orgs are registered before anything is granted to them.
    for user in ("asha", "ravi", "meera"):
        await authz.add_user(user)
    for org in ("acme", "globex"):
        await authz.add_org(org)

    # 4. Roles per org, direct grants with an expiry, and a super-admin.
    await authz.define_role("trader", [Cap.AVAILABILITY_POST, Cap.AVAILABILITY_EDIT_OWN])
    await authz.assign_role("asha", "trader", "acme")
    week = clock.now() + timedelta(weeks=1)
    await authz.grant("ravi", Cap.TRADE_APPROVE, "acme", expires_at=week, granted_by="meera")
    await authz.grant("meera", "admin:all", "acme")

    # 5. Decisions.
    print(await authz.has("asha", Cap.AVAILABILITY_POST, "acme"))
    print(await authz.has("asha", Cap.AVAILABILITY_POST, "globex"))
    print(await authz.explain("ravi", Cap.TRADE_APPROVE, "acme"))
    try:
        await authz.require("asha", Cap.TRADE_APPROVE, "acme")
    except Forbidden as exc:
        print(exc)

    # 6. :own vs :any: the callback says whether the resource at hand belongs to the user.
    own = await authz.check_owned("asha", "availability:edit", "acme", lambda: True)
    other = await authz.check_owned("asha", "availability:edit", "acme", lambda: False)
    print(own.allowed, other.allowed, other.reason)

    # 7. Expiry is exact, even for cached grants.
    clock.set(week - timedelta(seconds=1))
    print(await authz.has("ravi", Cap.TRADE_APPROVE, "acme"))
    clock.set(week + timedelta(seconds=1))
    print(await authz.explain("ravi", Cap.TRADE_APPROVE, "acme"))
    print(await authz.has("meera", Cap.TRADE_APPROVE_HIGH_VALUE, "acme"))
    await store.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp) / "authz.db"))
