"""In-process cache of each user's effective grants.

Entries hold every grant with its expiry, so a cached snapshot stays exact at the expiry
boundary. A load that overlaps an invalidation is not stored: otherwise a read that began
before a revoke committed could put the revoked grant back after the invalidation ran.
"""

from __future__ import annotations

from tether.authz.engine import UserGrants


class GrantCache:
    def __init__(self, max_users: int = 100_000) -> None:
        self.max_users = max_users
        self._entries: dict[str, UserGrants] = {}
        self._epoch = 0  # grows on every invalidation; a load stores only if it did not move
        self.hits = 0
        self.misses = 0

    def get(self, user: str) -> UserGrants | None:
        found = self._entries.get(user)
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
        if len(self._entries) >= self.max_users:
            # Evict the oldest entry (dicts keep insertion order): cheap and good enough.
            self._entries.pop(next(iter(self._entries)))
        self._entries[snapshot.user] = snapshot

    def invalidate(self, user: str) -> None:
        self._epoch += 1
        self._entries.pop(user, None)

    def clear(self) -> None:
        self._epoch += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
