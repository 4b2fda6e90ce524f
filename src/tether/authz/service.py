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
from tether.core.errors import EventValidationError
from tether.tenancy import check_tenant_id

OwnerCheck = Callable[[], Awaitable[bool] | bool]


class Authz:
    """Answer ``has``/``require``/``explain`` and change grants.

    ``cache=None`` disables caching (every decision reads the store). Capability names are
    checked against the registry on every call, so a typo raises instead of denying.

    ``tenancy=True`` (docs/tenancy.md): an org is a tenant. Every decision and every grant
    names one, valid by the tenant id rule; a decision sees only the grants in that org (never
    a grant to every org), read in a transaction scoped to it, and cached per tenant. A check
    without a valid org is denied without a query (``Reason.NO_TENANT``); a change without
    one raises :class:`InvalidGrantError` before anything is written.
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
        tenancy: bool = False,
    ) -> None:
        self.store = store
        self.tenancy = tenancy
        self.registry = registry
        self.clock = clock
        self.cache = (cache or GrantCache()) if use_cache else None
        self.audit = audit

    async def sync(self) -> None:
        """Store every capability the registry knows; call once at start-up."""
        await self.store.sync_capabilities(self.registry.known)

    # --- decisions -------------------------------------------------------------------------

    async def grants_of(self, user: str, tenant: str | None = None) -> UserGrants:
        """``user``'s grants (with tenancy, those in ``tenant`` only), cached."""
        cache = self.cache
        if cache is not None:
            found = cache.get(user, tenant)
            if found is not None:
                return found
        return await self._load(user, tenant)

    async def _load(self, user: str, tenant: str | None) -> UserGrants:
        cache = self.cache
        epoch = 0 if cache is None else cache.epoch()
        if tenant is None:  # without tenancy: every grant (the port's call without a tenant)
            snapshot = UserGrants(user, await self.store.load_grants(user))
        else:
            snapshot = UserGrants(user, await self.store.load_grants(user, tenant), tenant)
        if cache is not None:
            cache.put(snapshot, epoch)
        return snapshot

    async def _decide_from(self, user: str, org: str | None) -> UserGrants:
        """The grants a decision in ``org`` reads; raises :class:`_NoTenant` under tenancy
        when ``org`` is not a valid tenant id."""
        if not self.tenancy:
            return await self.grants_of(user)
        cache = self.cache
        if cache is not None and org is not None:
            # Only valid tenants are ever stored under one, so a hit needs no validation: the
            # common path costs what it costs without tenancy. (None is the key of a snapshot
            # of every grant, should a cache be shared with an Authz without tenancy.)
            found = cache.get(user, org)
            if found is not None:
                return found
        try:
            tenant = check_tenant_id(org)
        except EventValidationError:
            raise _NoTenant from None
        return await self._load(user, tenant)

    def _change_tenant(self, org: str | None) -> str | None:
        """The tenant a change is scoped to, or None without tenancy; raises before writing."""
        if not self.tenancy:
            return None
        try:
            return check_tenant_id(org)
        except EventValidationError as exc:
            raise InvalidGrantError(
                f"tenancy is on: a grant names its org, which is a tenant ({exc})"
            ) from None

    async def has(self, user: str, capability: str, org: str | None = None) -> bool:
        self.registry.check(capability)
        try:
            snapshot = await self._decide_from(user, org)
        except _NoTenant:
            if self.audit is not None and self.audit.wants(False):
                self.audit.record(_no_tenant(user, capability, org), self.clock.now())
            return False
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
        try:
            snapshot = await self._decide_from(user, org)
        except _NoTenant:
            return _no_tenant(user, capability, org)
        return snapshot.decide(capability, org, self.clock.now())

    async def check_owned(
        self, user: str, base: str, org: str | None, is_owner: OwnerCheck
    ) -> Decision:
        """Decide ``base:any``, or ``base:own`` when ``is_owner()`` says the resource is theirs.

        The ownership callback runs only when ``:any`` is not already held, so the common
        admin path costs no lookup of the resource.
        """
        own, any_ = self.registry.check_owned(base)
        now = self.clock.now()
        try:
            snapshot = await self._decide_from(user, org)
        except _NoTenant:
            refused = _no_tenant(user, any_, org)
            if self.audit is not None and self.audit.wants(False):
                self.audit.record(refused, now)
            return refused
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
        """Register ``org``; with tenancy, in a transaction scoped to it (its own tenant)."""
        tenant = self._change_tenant(org)
        async with self.store.transaction(session, tenant) as tx:
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
        tenant = self._change_tenant(org)
        async with self.store.transaction(session, tenant) as tx:
            await _known(tx, user=user, org=org, tenancy=self.tenancy)
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
        tenant = self._change_tenant(org)
        async with self.store.transaction(session, tenant) as tx:
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
        tenant = self._change_tenant(org)
        async with self.store.transaction(session, tenant) as tx:
            await _known(tx, user=user, org=org, tenancy=self.tenancy)
            if not await tx.role_exists(role):
                raise UnknownSubjectError(f"unknown role {role!r}: define it first")
            await tx.assign_role(
                user, role, org, expires_at=expires_at, granted_by=granted_by, now=now
            )
            payload = _payload(user, org, expires_at, granted_by, role=role)
            await tx.changed(events.ROLE_ASSIGNED, payload, user, org)
        self.invalidate(user)

    async def unassign_role(self, user: str, role: str, org: str, *, session: Any = None) -> bool:
        tenant = self._change_tenant(org)
        async with self.store.transaction(session, tenant) as tx:
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


class _NoTenant(Exception):
    """Tenancy is on and a decision named no valid org: it is denied without a query."""


def _no_tenant(user: str, capability: str, org: str | None) -> Decision:
    return Decision(False, user, capability, org, Reason.NO_TENANT)


def _identifier(kind: str, value: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 255 or not value.isprintable():
        raise InvalidGrantError(f"{kind} id must be 1-255 printable characters, got {value!r}")
    return value


async def _known(tx: AuthzTx, *, user: str, org: str | None, tenancy: bool) -> None:
    # With tenancy the application role may not read the user registry, which every tenant
    # shares (listing it would show every tenant's user ids): an unknown user is refused by
    # the grant's foreign key instead (UnknownSubjectError all the same).
    if not tenancy and not await tx.user_exists(user):
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
