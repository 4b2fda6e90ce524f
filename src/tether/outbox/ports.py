"""The relay's storage port: claim a batch of outbox rows, then settle every row of it.

A batch is one unit of work on the store. On PostgreSQL it is one transaction whose row locks
are the lease (``FOR UPDATE SKIP LOCKED``): if the relay dies, the transaction rolls back and
the rows are free again at once, with no lease to wait out. Settling deletes (or marks) what
was published and records failures in the same transaction.

Only the head of each partition key is claimable (no earlier live row with the same key), so
events of one aggregate reach the sinks in commit order across relays and retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from tether.core.envelope import Event


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    seq: int
    event: Event
    attempts: int
    max_attempts: int | None
    done_sinks: frozenset[str]


@dataclass(frozen=True, slots=True)
class Retry:
    """A row that was not (fully) published in this batch.

    ``charge`` spends one attempt (the event itself failed); without it the row just waits
    (its sink was unreachable). ``dead`` moves it to the dead-letter state.
    """

    seq: int
    error: str
    delay: float
    charge: bool
    dead: bool
    done_sinks: frozenset[str]


class OutboxBatch(Protocol):
    @property
    def events(self) -> Sequence[ClaimedEvent]: ...

    async def settle(self, published: Sequence[int], retries: Sequence[Retry]) -> None: ...


class OutboxStore(Protocol):
    def claim(self, limit: int) -> AbstractAsyncContextManager[OutboxBatch]:
        """Claim up to ``limit`` head rows; leaving the block commits what was settled."""
        ...

    async def wait(self, timeout: float) -> bool:
        """Wait until new events may exist or ``timeout`` passes; True if a wake-up came."""
        ...

    async def close(self) -> None: ...
