"""A guard for flaky dependencies: timeout, circuit breaker, bulkhead and fallback.

Usage::

    scorer = Guard("scorer", timeout=0.5, fallback=rule_based_score)
    score = await scorer.call(ai_score, order)

Share a circuit between processes with ``store=RedisBreakerStore(redis_client)``.
"""

from typing import TYPE_CHECKING, Any

from tether.guard.errors import BulkheadFull, CircuitOpen, GuardRejected, GuardTimeout
from tether.guard.guard import Guard
from tether.guard.inspect import BreakerInspector, CircuitView, view_of
from tether.guard.policy import BreakerPolicy, State
from tether.guard.store import BreakerStore, MemoryBreakerStore

if TYPE_CHECKING:
    from tether.guard.redis_store import RedisBreakerStore

__all__ = [
    "BreakerInspector",
    "BreakerPolicy",
    "BreakerStore",
    "BulkheadFull",
    "CircuitOpen",
    "CircuitView",
    "Guard",
    "GuardRejected",
    "GuardTimeout",
    "MemoryBreakerStore",
    "RedisBreakerStore",
    "State",
    "view_of",
]


def __getattr__(name: str) -> Any:
    # RedisBreakerStore needs the redis extra: import it only when asked for.
    if name == "RedisBreakerStore":
        from tether.guard.redis_store import RedisBreakerStore

        return RedisBreakerStore
    raise AttributeError(f"module 'tether.guard' has no attribute {name!r}")
