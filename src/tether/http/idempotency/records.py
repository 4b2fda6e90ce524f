"""The idempotency store port: what every store (memory, Redis, Postgres) must do.

A record moves ``(absent) -> in_flight -> completed``; ``in_flight`` carries a lease token and
expires after the lease TTL, so a crashed worker never blocks its key for longer than that.
Every write after ``begin`` names the lease token, so a worker whose lease was taken over can
no longer touch the record (stores return ``False`` or raise :class:`LeaseLostError`).
"""

from __future__ import annotations

import enum
import itertools
import secrets
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import orjson

_TOKEN_PREFIX = secrets.token_hex(8)
_TOKEN_COUNTER = itertools.count()


def new_token() -> str:
    """A lease token unique across processes (random per process, then a counter): cheap,
    and it only has to tell lease holders apart, not be secret."""
    return f"{_TOKEN_PREFIX}-{next(_TOKEN_COUNTER)}"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def headers_json(self) -> bytes:
        return orjson.dumps([[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers])

    @staticmethod
    def headers_from_json(raw: bytes | str) -> tuple[tuple[bytes, bytes], ...]:
        items: list[list[str]] = orjson.loads(raw)
        return tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in items)


class Outcome(enum.Enum):
    ACQUIRED = "acquired"  # the caller now holds the lease and runs the handler
    IN_FLIGHT = "in_flight"  # another request holds the lease
    MISMATCH = "mismatch"  # the key was used with a different request fingerprint
    COMPLETED = "completed"  # replay ``response``


@dataclass(frozen=True)
class Begin:
    outcome: Outcome
    token: str = ""
    retry_after: float = 0.0
    response: StoredResponse | None = None


@runtime_checkable
class IdempotencyStore(Protocol):
    """Safe for concurrent use from many tasks and processes sharing the same backend."""

    async def begin(
        self, key: str, fingerprint: str, tenant: str, lease_ttl: float, record_ttl: float
    ) -> Begin:
        """Take the lease on ``key`` if it is free (or its lease expired), else report why not."""
        ...

    async def complete(
        self, key: str, token: str, response: StoredResponse, record_ttl: float
    ) -> bool:
        """Store the response; ``False`` when ``token`` no longer holds the record."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Forget an in-flight record we hold, so the key can be retried. Completed ones stay."""
        ...


@runtime_checkable
class TransactionalStore(IdempotencyStore, Protocol):
    """A store that can complete the record inside the caller's own database transaction."""

    async def complete_in(
        self, session: Any, key: str, token: str, response: StoredResponse, record_ttl: float
    ) -> None:
        """Write the completed record through ``session``; raise ``LeaseLostError`` if not ours."""
        ...
