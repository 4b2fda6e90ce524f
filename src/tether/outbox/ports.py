"""The relay's storage port: claim a batch of outbox rows, then settle every row of it.

A batch is one unit of work on the store. On PostgreSQL it is one transaction whose row locks
are the lease (``FOR UPDATE SKIP LOCKED``): if the relay dies, the transaction rolls back and
the rows are free again at once, with no lease to wait out. Settling deletes (or marks) what
was published and records failures in the same transaction.

Only the head of each partition key is claimable (no earlier live row with the same key), so
events of one aggregate reach the sinks in commit order across relays and retries. With
``run > 1`` the batch also carries up to ``run - 1`` consecutive due followers of each head it
claimed; no other relay can take them, since their head is still live until this batch commits.
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


# Column positions shared by both stores' claim and follower queries.
KEY_COLUMN, DUE_COLUMN = 9, 20


def claimed_from_row(
    row: Any, *, id: uuid.UUID, created_at: datetime, done_sinks: Iterable[str]
) -> ClaimedEvent:
    """Build a claimed event from a claim/follower row; the store converts the columns its
    driver returns in another form (ids, times, the sink list)."""
    event = Event(
        id=id,
        type=row[2],
        data=row[3].encode(),
        topic=row[4],
        version=row[5],
        tenant_id=row[6],
        aggregate_type=row[7],
        aggregate_id=row[8],
        partition_key=row[KEY_COLUMN],
        source=row[10],
        created_at=created_at,
        user_id=row[12],
        correlation_id=row[13],
        causation_id=row[14],
        traceparent=row[15],
        idempotency_key=row[16],
    )
    return ClaimedEvent(row[0], event, row[17], row[18], frozenset(done_sinks))


def merge_runs(heads: list[Any], followers: Sequence[Any], limit: int) -> list[Any]:
    """Head rows plus each key's followers (rows ordered by seq), cut at a key's first row that
    is not due, within ``limit`` rows in all."""
    cut: set[str] = set()
    out = list(heads)
    for row in followers:
        key = row[KEY_COLUMN]
        if key in cut or not row[DUE_COLUMN]:
            cut.add(key)
            continue
        if len(out) >= limit:
            break
        out.append(row)
    return out


class Wakeup:
    """A wake-up signal a store's ``wait`` blocks on: set by LISTEN callbacks or producers."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self, *_: object) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True if woken before ``timeout`` seconds, False on timeout."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True


class OutboxBatch(Protocol):
    @property
    def events(self) -> Sequence[ClaimedEvent]: ...

    async def settle(self, published: Sequence[int], retries: Sequence[Retry]) -> None: ...


class OutboxStore(Protocol):
    def claim(self, limit: int, *, run: int = 1) -> AbstractAsyncContextManager[OutboxBatch]:
        """Claim up to ``limit`` rows: heads, each followed by at most ``run - 1`` of its due
        followers in order; leaving the block commits what was settled. Rows neither published
        nor retried stay as they were."""
        ...

    async def wait(self, timeout: float) -> bool:
        """Wait until new events may exist or ``timeout`` passes; True if a wake-up came."""
        ...

    async def close(self) -> None: ...
