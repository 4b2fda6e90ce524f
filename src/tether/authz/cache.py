"""In-process cache of each user's effective grants, per tenant.

Entries hold every grant with its expiry, so a cached snapshot stays exact at the expiry
boundary. A load that overlaps an invalidation is not stored: otherwise a read that began
before a revoke committed could put the revoked grant back after the invalidation ran.

With tenancy on a snapshot holds one tenant's grants of a user (docs/tenancy.md), so entries
are kept per ``(user, tenant)``: a user's snapshot for one tenant is never the answer for
another. Invalidation names a user (that is what a change notification carries) and drops
that user's entries of every tenant.
"""

from __future__ import annotations

from tether.authz.engine import UserGrants


class GrantCache:
    def __init__(self, max_users: int = 100_000) -> None:
        self.max_users = max_users  # entries, i.e. (user, tenant) pairs, kept at most
        # user -> tenant (None without tenancy) -> snapshot: invalidating a user is one pop.
        self._entries: dict[str, dict[str | None, UserGrants]] = {}
        self._size = 0
        self._epoch = 0  # grows on every invalidation; a load stores only if it did not move
        self.hits = 0
        self.misses = 0

    def get(self, user: str, tenant: str | None = None) -> UserGrants | None:
        tenants = self._entries.get(user)
        found = None if tenants is None else tenants.get(tenant)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def epoch(self) -> int:
        """Take before loading; pass to :meth:`put`."""
        return self._epoch

    def put(self, snapshot: UserGrants, epoch: int) -> None:
        if epoch != self._epoch:
            return
        tenants = self._entries.get(snapshot.user)
        if tenants is None or snapshot.tenant not in tenants:
            if self._size >= self.max_users:
                # Evict the oldest user with all their tenants (dicts keep insertion order):
                # cheap, and the bound holds however many tenants one user is asked about.
                self._size -= len(self._entries.pop(next(iter(self._entries))))
                tenants = self._entries.get(snapshot.user)
            if tenants is None:
                tenants = self._entries[snapshot.user] = {}
            self._size += 1
        tenants[snapshot.tenant] = snapshot

    def invalidate(self, user: str) -> None:
        """Drop ``user``'s entries, in every tenant."""
        self._epoch += 1
        self._size -= len(self._entries.pop(user, {}))

    def clear(self) -> None:
        self._epoch += 1
        self._entries.clear()
        self._size = 0

    def __len__(self) -> int:
        return self._size
