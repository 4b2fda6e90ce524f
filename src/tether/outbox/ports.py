"""The relay's storage port: claim a batch of outbox rows, then settle every row of it.

A batch is one unit of work on the store. On PostgreSQL it is one transaction whose row locks
are the lease (``FOR UPDATE SKIP LOCKED``): if the relay dies, the transaction rolls back and
the rows are free again at once, with no lease to wait out. Settling deletes (or marks) what
was published and records failures in the same transaction.

Only the head of each partition key is claimable (no earlier pending row with the same key), so
events of one aggregate reach the sinks in commit order across relays and retries. The batch
also carries consecutive due rows behind each head it claimed, at least ``run`` per key where
they exist (:mod:`tether.outbox.claiming` decides how many); no other relay can take them,
since their head is still pending until this batch commits.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tether.core.envelope import Event
from tether.core.lifecycle import Transition
from tether.core.waiting import wait_set


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    seq: int
    event: Event
    attempts: int
    max_attempts: int | None
    done_sinks: frozenset[str]


@dataclass(frozen=True, slots=True)
class Retry:
    """A row that was not (fully) published in this batch, and its transition in the one item
    lifecycle (:func:`tether.core.lifecycle.decide`): retried after backoff with an attempt
    spent, deferred with none (its sink was unreachable), or dead. ``done_sinks`` are the sinks
    that already took it, so a retry skips them."""

    seq: int
    transition: Transition
    done_sinks: frozenset[str]


def claimed_from_row(
    row: Any, *, id: uuid.UUID, created_at: datetime, done_sinks: Iterable[str]
) -> ClaimedEvent:
    """Build a claimed event from a claimed row, read by column name; the store converts the
    columns its driver returns in another form (ids, times, the sink list)."""
    event = Event(
        id=id,
        type=row["type"],
        data=row["payload"].encode(),
        topic=row["topic"],
        version=row["version"],
        tenant_id=row["tenant_id"],
        aggregate_type=row["aggregate_type"],
        aggregate_id=row["aggregate_id"],
        partition_key=row["partition_key"],
        source=row["source"],
        created_at=created_at,
        user_id=row["user_id"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        traceparent=row["traceparent"],
        idempotency_key=row["idempotency_key"],
    )
    return ClaimedEvent(
        row["seq"], event, row["attempts"], row["max_attempts"], frozenset(done_sinks)
    )


class Wakeup:
    """A wake-up signal a store's ``wait`` blocks on: set by LISTEN callbacks or producers."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self, *_: object) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True if woken before ``timeout`` seconds, False on timeout."""
        if not await wait_set(self._event, timeout):
            return False
        self._event.clear()
        return True


class OutboxBatch(Protocol):
    @property
    def events(self) -> Sequence[ClaimedEvent]: ...

    async def settle(self, published: Sequence[int], retries: Sequence[Retry]) -> None: ...


class OutboxStore(Protocol):
    def claim(self, limit: int, *, run: int = 1) -> AbstractAsyncContextManager[OutboxBatch]:
        """Claim up to ``limit`` rows: heads, each followed by due rows of its key in order (at
        least ``run`` rows per key where they exist, more when few keys share the batch);
        leaving the block commits what was settled. Rows neither published nor retried stay as
        they were."""
        ...

    async def wait(self, timeout: float) -> bool:
        """Wait until new events may exist or ``timeout`` passes; True if a wake-up came."""
        ...

    async def close(self) -> None: ...
