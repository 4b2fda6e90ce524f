"""Rate-limit stores: ``memory`` (one process) and ``redis`` (shared, one Lua script a decision)."""

from __future__ import annotations

from typing import Protocol

from tether.http.ratelimit.algorithms import Algorithm, Decision, Limit


class RateLimitStore(Protocol):
    async def hit(self, key: str, limit: Limit, algorithm: Algorithm, cost: int = 1) -> Decision:
        """Count ``cost`` against ``key`` if it fits, atomically. Raises ``StoreError`` when the
        backend cannot be reached (the limiter then applies its failure policy)."""
        ...
