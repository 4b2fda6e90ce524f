"""Idempotency-Key for POST/PUT/PATCH: replay completed requests, refuse concurrent duplicates."""

from tether.http.idempotency.context import IdempotencyContext, complete_in, current
from tether.http.idempotency.middleware import IdempotencyMiddleware
from tether.http.idempotency.policy import IdempotencyPolicy, Mode, RouteRule, default_identity
from tether.http.idempotency.records import (
    Begin,
    IdempotencyStore,
    Outcome,
    StoredResponse,
    TransactionalStore,
)
from tether.http.idempotency.stores.memory import MemoryIdempotencyStore

__all__ = [
    "Begin",
    "IdempotencyContext",
    "IdempotencyMiddleware",
    "IdempotencyPolicy",
    "IdempotencyStore",
    "MemoryIdempotencyStore",
    "Mode",
    "Outcome",
    "RouteRule",
    "StoredResponse",
    "TransactionalStore",
    "complete_in",
    "current",
    "default_identity",
]
