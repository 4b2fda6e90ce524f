"""Pure decisions over one user's effective grants. No I/O: the cache and the store feed it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from tether.authz.model import Decision, Grant, Reason
from tether.authz.names import implied_by

_Key = tuple[str | None, str]
_MAX_MEMO = 1024


class UserGrants:
    """Every grant of one user, indexed by ``(org, capability)`` for constant-time checks.

    Expired grants stay in the index: expiry is compared against the clock on every decision,
    so a cached snapshot is exact at the boundary and ``explain`` can say when a grant ended.
    ``tenant`` names the tenant whose grants these are when tenancy is on (None otherwise).
    """

    __slots__ = ("_candidates", "_index", "grants", "tenant", "user")

    def __init__(self, user: str, grants: Iterable[Grant], tenant: str | None = None) -> None:
        self.user = user
        self.tenant = tenant
        self.grants = tuple(grants)
        index: dict[_Key, list[Grant]] = {}
        for grant in self.grants:
            index.setdefault((grant.org, grant.capability), []).append(grant)
        self._index = {key: tuple(found) for key, found in index.items()}
        # (capability, org) -> every grant that could satisfy it, most specific first. Filled
        # on first use, so a repeated check is one lookup plus an expiry comparison.
        self._candidates: dict[tuple[str, str | None], tuple[Grant, ...]] = {}

    def _candidates_for(self, capability: str, org: str | None) -> tuple[Grant, ...]:
        found: list[Grant] = []
        for name in implied_by(capability):
            if org is not None:
                found.extend(self._index.get((org, name), ()))
            found.extend(self._index.get((None, name), ()))
        if len(self._candidates) >= _MAX_MEMO:
            # Orgs can come from request headers: never let them grow this without bound.
            self._candidates.clear()
        candidates = self._candidates[(capability, org)] = tuple(found)
        return candidates

    def match(self, capability: str, org: str | None, now: datetime) -> Grant | None:
        """The first active grant that satisfies ``capability`` in ``org``, or None."""
        candidates = self._candidates.get((capability, org))
        if candidates is None:
            candidates = self._candidates_for(capability, org)
        for grant in candidates:
            if grant.expires_at is None or now < grant.expires_at:
                return grant
        return None

    def decide(self, capability: str, org: str | None, now: datetime) -> Decision:
        """A full decision with its reason (slower than :meth:`match`; used by explain/audit)."""
        grant = self.match(capability, org, now)
        if grant is not None:
            return Decision(True, self.user, capability, org, Reason.GRANTED, grant)
        names = set(implied_by(capability))
        relevant = [g for g in self.grants if g.capability in names]
        in_scope = [g for g in relevant if g.org is None or g.org == org]
        expired = [g.expires_at for g in in_scope if g.expires_at is not None]
        if expired:
            return Decision(
                False, self.user, capability, org, Reason.EXPIRED, expired_at=max(expired)
            )
        others = sorted({g.org for g in relevant if g.org is not None and g.active(now)})
        if others:
            return Decision(
                False, self.user, capability, org, Reason.OTHER_ORG, other_orgs=tuple(others)
            )
        return Decision(False, self.user, capability, org, Reason.NO_GRANT)
