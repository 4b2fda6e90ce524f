"""In-memory adapter of the authorization store, for unit tests and users' own test suites.

Transactions work on a copy of the state that replaces the original only when the block ends
without an exception, so a failed grant leaves nothing behind, as on a real database.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tether.authz.errors import UnknownCapabilityError, UnknownSubjectError
from tether.authz.model import Grant, GrantRecord

_Meta = tuple[datetime | None, str | None, datetime]  # expires_at, granted_by, granted_at


@dataclass
class _State:
    capabilities: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    orgs: set[str] = field(default_factory=set)
    roles: dict[str, set[str]] = field(default_factory=dict)
    user_caps: dict[tuple[str, str | None, str], _Meta] = field(default_factory=dict)
    user_roles: dict[tuple[str, str, str], _Meta] = field(default_factory=dict)
    version: int = 0
    events: list[tuple[str, dict[str, Any], str | None, str | None]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    type: str
    payload: dict[str, Any]
    user: str | None
    org: str | None


class _MemoryTx:
    def __init__(self, state: _State) -> None:
        self.state = state

    async def add_user(self, user: str) -> None:
        self.state.users.add(user)

    async def add_org(self, org: str) -> None:
        self.state.orgs.add(org)

    async def user_exists(self, user: str) -> bool:
        return user in self.state.users

    async def org_exists(self, org: str) -> bool:
        return org in self.state.orgs

    async def role_exists(self, role: str) -> bool:
        return role in self.state.roles

    async def define_role(self, role: str, capabilities: Iterable[str]) -> None:
        names = set(capabilities)
        for name in names:
            self._known_capability(name)
        self.state.roles[role] = names

    def _known_capability(self, name: str) -> None:
        if name not in self.state.capabilities:
            raise UnknownCapabilityError(f"unknown capability {name!r}: not synchronized")

    def _known(self, user: str, org: str | None) -> None:
        if user not in self.state.users:
            raise UnknownSubjectError(f"unknown user {user!r}")
        if org is not None and org not in self.state.orgs:
            raise UnknownSubjectError(f"unknown org {org!r}")

    async def grant(
        self,
        user: str,
        capability: str,
        org: str | None,
        *,
        expires_at: datetime | None,
        granted_by: str | None,
        now: datetime,
    ) -> None:
        self._known(user, org)
        self._known_capability(capability)
        self.state.user_caps[(user, org, capability)] = (expires_at, granted_by, now)

    async def revoke(self, user: str, capability: str, org: str | None) -> bool:
        return self.state.user_caps.pop((user, org, capability), None) is not None

    async def assign_role(
        self,
        user: str,
        role: str,
        org: str,
        *,
        expires_at: datetime | None,
        granted_by: str | None,
        now: datetime,
    ) -> None:
        self._known(user, org)
        if role not in self.state.roles:
            raise UnknownSubjectError(f"unknown role {role!r}")
        self.state.user_roles[(user, org, role)] = (expires_at, granted_by, now)

    async def unassign_role(self, user: str, role: str, org: str) -> bool:
        return self.state.user_roles.pop((user, org, role), None) is not None

    async def changed(
        self, event_type: str, payload: dict[str, Any], user: str | None, org: str | None
    ) -> None:
        self.state.version += 1
        self.state.events.append((event_type, payload, user, org))


class MemoryAuthzStore:
    """Implements :class:`tether.authz.port.AuthzStore` in process memory."""

    def __init__(self) -> None:
        self._state = _State()
        self._lock = asyncio.Lock()
        self._on_commit: list[Callable[[], None]] = []

    @property
    def events(self) -> list[RecordedEvent]:
        """Events recorded by committed changes (the outbox events a database would hold)."""
        return [RecordedEvent(*event) for event in self._state.events]

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every committed transaction (in-process invalidation)."""
        self._on_commit.append(callback)

    async def sync_capabilities(self, names: Iterable[str]) -> None:
        self._state.capabilities.update(names)

    async def capabilities(self) -> frozenset[str]:
        return frozenset(self._state.capabilities)

    async def load_grants(self, user: str, tenant: str | None = None) -> list[Grant]:
        state = self._state
        grants = [
            Grant(cap, org, meta[0])
            for (who, org, cap), meta in state.user_caps.items()
            if who == user and (tenant is None or org == tenant)
        ]
        for (who, org, role), meta in state.user_roles.items():
            if who == user and (tenant is None or org == tenant):
                grants.extend(Grant(cap, org, meta[0], role) for cap in state.roles[role])
        return grants

    async def list_grants(
        self, *, user: str | None = None, org: str | None = None, tenant: str | None = None
    ) -> list[GrantRecord]:
        if tenant is not None:
            if org is not None and org != tenant:
                return []
            org = tenant
        records = [
            GrantRecord(who, where, cap, None, *meta)
            for (who, where, cap), meta in self._state.user_caps.items()
        ]
        records += [
            GrantRecord(who, where, None, role, *meta)
            for (who, where, role), meta in self._state.user_roles.items()
        ]
        return [
            r for r in records if (user is None or r.user == user) and (org is None or r.org == org)
        ]

    async def version(self) -> int:
        return self._state.version

    @asynccontextmanager
    async def transaction(
        self, session: Any = None, tenant: str | None = None
    ) -> AsyncIterator[_MemoryTx]:
        # Memory has no row-level security: the tenant scopes nothing here (Authz keeps a
        # tenant's writes to its own org before they reach a store).
        async with self._lock:
            draft = copy.deepcopy(self._state)
            yield _MemoryTx(draft)
            changed = draft.version != self._state.version
            self._state = draft
        if changed:
            for callback in self._on_commit:
                callback()

    async def close(self) -> None:
        return None
