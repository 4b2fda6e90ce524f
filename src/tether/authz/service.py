"""The authorization service: decisions from cached grants, and grant changes with events."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from tether.authz import events
from tether.authz.audit import DecisionLog
from tether.authz.cache import GrantCache
from tether.authz.engine import UserGrants
from tether.authz.errors import Forbidden, InvalidGrantError, UnknownSubjectError
from tether.authz.model import Decision, Grant, Reason
from tether.authz.names import Registry
from tether.authz.port import AuthzStore, AuthzTx
from tether.core.clock import SYSTEM_CLOCK, Clock

OwnerCheck = Callable[[], Awaitable[bool] | bool]


class Authz:
    """Answer ``has``/``require``/``explain`` and change grants.

    ``cache=None`` disables caching (every decision reads the store). Capability names are
    checked against the registry on every call, so a typo raises instead of denying.
    """

    def __init__(
        self,
        store: AuthzStore,
        registry: Registry,
        *,
        clock: Clock = SYSTEM_CLOCK,
        cache: GrantCache | None = None,
        use_cache: bool = True,
        audit: DecisionLog | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.cache = (cache or GrantCache()) if use_cache else None
        self.audit = audit

    async def sync(self) -> None:
        """Store every capability the registry knows; call once at start-up."""
        await self.store.sync_capabilities(self.registry.known)

    # --- decisions -------------------------------------------------------------------------

    async def grants_of(self, user: str) -> UserGrants:
        cache = self.cache
        if cache is not None:
            found = cache.get(user)
            if found is not None:
                return found
            epoch = cache.epoch()
            snapshot = UserGrants(user, await self.store.load_grants(user))
            cache.put(snapshot, epoch)
            return snapshot
        return UserGrants(user, await self.store.load_grants(user))

    async def has(self, user: str, capability: str, org: str | None = None) -> bool:
        self.registry.check(capability)
        snapshot = await self.grants_of(user)
        now = self.clock.now()
        grant = snapshot.match(capability, org, now)
        if self.audit is not None and self.audit.wants(grant is not None):
            self._record(snapshot, capability, org, now, grant)
        return grant is not None

    async def require(self, user: str, capability: str, org: str | None = None) -> None:
        """Raise :class:`Forbidden` (``Missing capability: <name>``) unless ``user`` has it."""
        if not await self.has(user, capability, org):
            raise Forbidden(capability)

    async def explain(self, user: str, capability: str, org: str | None = None) -> Decision:
        self.registry.check(capability)
        snapshot = await self.grants_of(user)
        return snapshot.decide(capability, org, self.clock.now())

    async def check_owned(
        self, user: str, base: str, org: str | None, is_owner: OwnerCheck
    ) -> Decision:
        """Decide ``base:any``, or ``base:own`` when ``is_owner()`` says the resource is theirs.

        The ownership callback runs only when ``:any`` is not already held, so the common
        admin path costs no lookup of the resource.
        """
        own, any_ = self.registry.check_owned(base)
        snapshot = await self.grants_of(user)
        now = self.clock.now()
        decision = snapshot.decide(any_, org, now)
        if not decision.allowed:
            owner = is_owner()
            if inspect.isawaitable(owner):
                owner = await owner
            if owner:
                decision = snapshot.decide(own, org, now)
            elif snapshot.match(own, org, now) is not None:
                decision = Decision(False, user, any_, org, Reason.NOT_OWNER)
        if self.audit is not None and self.audit.wants(decision.allowed):
            self.audit.record(decision, now)
        return decision

    async def require_owned(
        self, user: str, base: str, org: str | None, is_owner: OwnerCheck
    ) -> Decision:
        decision = await self.check_owned(user, base, org, is_owner)
        if not decision.allowed:
            raise Forbidden(decision.capability)
        return decision

    def _record(
        self,
        snapshot: UserGrants,
        capability: str,
        org: str | None,
        now: datetime,
        grant: Grant | None,
    ) -> None:
        assert self.audit is not None
        if grant is not None:
            decision = Decision(True, snapshot.user, capability, org, Reason.GRANTED, grant)
        else:
            decision = snapshot.decide(capability, org, now)
        self.audit.record(decision, now)

    def invalidate(self, user: str | None = None) -> None:
        if self.cache is not None:
            self.cache.clear() if user is None else self.cache.invalidate(user)

    # --- changes ---------------------------------------------------------------------------

    async def add_user(self, user: str, *, session: Any = None) -> None:
        async with self.store.transaction(session) as tx:
            await tx.add_user(_identifier("user", user))

    async def add_org(self, org: str, *, session: Any = None) -> None:
        async with self.store.transaction(session) as tx:
            await tx.add_org(_identifier("org", org))

    async def define_role(self, role: str, capabilities: list[str], *, session: Any = None) -> None:
        names = [self.registry.check(name) for name in capabilities]
        async with self.store.transaction(session) as tx:
            await tx.define_role(_identifier("role", role), names)
            payload = {"role": role, "capabilities": sorted(names)}
            await tx.changed(events.ROLE_DEFINED, payload, None, None)
        self.invalidate()

    async def grant(
        self,
        user: str,
        capability: str,
        org: str | None = None,
        *,
        expires_at: datetime | None = None,
        granted_by: str | None = None,
        session: Any = None,
    ) -> None:
        """Grant ``capability`` to ``user`` in ``org`` (None: all orgs), replacing an old one."""
        self.registry.check(capability)
        now = self._check_expiry(expires_at)
        async with self.store.transaction(session) as tx:
            await _known(tx, user=user, org=org)
            await tx.grant(
                user, capability, org, expires_at=expires_at, granted_by=granted_by, now=now
            )
            payload = _payload(user, org, expires_at, granted_by, capability=capability)
            await tx.changed(events.GRANTED, payload, user, org)
        self.invalidate(user)

    async def revoke(
        self,
        user: str,
        capability: str,
        org: str | None = None,
        *,
        revoked_by: str | None = None,
        session: Any = None,
    ) -> bool:
        """Revoke a direct grant; False (and no event) if there was none."""
        self.registry.check(capability)
        async with self.store.transaction(session) as tx:
            existed = await tx.revoke(user, capability, org)
            if existed:
                payload = _payload(user, org, None, revoked_by, capability=capability)
                await tx.changed(events.REVOKED, payload, user, org)
        self.invalidate(user)
        return existed

    async def assign_role(
        self,
        user: str,
        role: str,
        org: str,
        *,
        expires_at: datetime | None = None,
        granted_by: str | None = None,
        session: Any = None,
    ) -> None:
        now = self._check_expiry(expires_at)
        async with self.store.transaction(session) as tx:
            await _known(tx, user=user, org=org)
            if not await tx.role_exists(role):
                raise UnknownSubjectError(f"unknown role {role!r}: define it first")
            await tx.assign_role(
                user, role, org, expires_at=expires_at, granted_by=granted_by, now=now
            )
            payload = _payload(user, org, expires_at, granted_by, role=role)
            await tx.changed(events.ROLE_ASSIGNED, payload, user, org)
        self.invalidate(user)

    async def unassign_role(self, user: str, role: str, org: str, *, session: Any = None) -> bool:
        async with self.store.transaction(session) as tx:
            existed = await tx.unassign_role(user, role, org)
            if existed:
                payload = _payload(user, org, None, None, role=role)
                await tx.changed(events.ROLE_UNASSIGNED, payload, user, org)
        self.invalidate(user)
        return existed

    def _check_expiry(self, expires_at: datetime | None) -> datetime:
        now = self.clock.now()
        if expires_at is None:
            return now
        if expires_at.tzinfo is None:
            raise InvalidGrantError(f"expiry {expires_at.isoformat()} has no time zone; use UTC")
        if expires_at <= now:
            raise InvalidGrantError(
                f"expiry {expires_at.isoformat()} is not in the future (now {now.isoformat()})"
            )
        return now


def _identifier(kind: str, value: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 255 or not value.isprintable():
        raise InvalidGrantError(f"{kind} id must be 1-255 printable characters, got {value!r}")
    return value


async def _known(tx: AuthzTx, *, user: str, org: str | None) -> None:
    if not await tx.user_exists(user):
        raise UnknownSubjectError(f"unknown user {user!r}: register it with add_user first")
    if org is not None and not await tx.org_exists(org):
        raise UnknownSubjectError(f"unknown org {org!r}: register it with add_org first")


def _payload(
    user: str,
    org: str | None,
    expires_at: datetime | None,
    by: str | None,
    **what: str,
) -> dict[str, Any]:
    return {
        "user": user,
        "org": org,
        **what,
        "expires_at": expires_at.isoformat() if expires_at else None,
        "by": by,
    }
