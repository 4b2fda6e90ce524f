"""The durable work-item engine's port: values and the two Protocols adapters implement.

Contract every adapter keeps (``tests/contract/test_queue_contract.py`` checks it):

* ``enqueue(items, tx=conn)`` writes in the caller's transaction and never commits.
* ``claim`` hands each due item to one claimer at a time, oldest first, under a lease, and
  counts the attempt at claim time (a worker that crashes on an item still uses it up).
  Items whose lease expired are claimable again; with a partition key only the oldest live
  item of that key is claimable, so one key is processed in order and a failing head blocks
  only its own key.
* ``fail``, ``dead_letter`` and ``defer`` follow the one item lifecycle
  (:mod:`tether.core.lifecycle`); ``defer`` postpones an item and gives back the attempt its
  claim counted.
* ``complete``/``fail``/``dead_letter``/``defer``/``heartbeat`` check the lease token: once an
  item was reclaimed by someone else the old holder gets :class:`LeaseLostError` (a zombie
  cannot ack).
* The admin operations (list, get, replay, purge, sweep, stats) work over any table that has
  the engine's core columns, so they also serve ``tether_outbox``. A table without leases
  (the outbox: its relay holds row locks instead) refuses ``claim`` and the lease operations.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from tether.core.backoff import RetryPolicy
from tether.core.errors import TetherError
from tether.core.lifecycle import ErrorRecord, ItemState

__all__ = [
    "Claimed",
    "ErrorRecord",
    "FilterError",
    "InvalidItemError",
    "Item",
    "ItemAdmin",
    "ItemFilter",
    "ItemState",
    "NewItem",
    "Progress",
    "QueueStats",
    "WorkQueue",
]


class FilterError(TetherError, ValueError):
    """An item filter names a column or value the table does not allow."""


class InvalidItemError(TetherError, ValueError):
    """A new item was refused before anything was written."""


def _require_aware(label: str, value: datetime | None, error: type[TetherError]) -> None:
    # A naive time would be read as UTC by one driver and as local time by another.
    if value is not None and value.tzinfo is None:
        raise error(f"{label} must be timezone-aware (e.g. datetime.now(UTC)), got {value!r}")


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item to enqueue. ``payload`` is a JSON-compatible value or encoded JSON bytes."""

    payload: Any
    partition_key: str | None = None
    run_at: datetime | None = None
    max_attempts: int | None = None
    id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        _require_aware("run_at", self.run_at, InvalidItemError)
        if self.max_attempts is not None and self.max_attempts < 1:
            raise InvalidItemError(f"max_attempts must be at least 1, got {self.max_attempts}")


@dataclass(frozen=True, slots=True)
class Item:
    """One row, as stored. ``available_at`` is the next attempt time while pending and the
    lease expiry while claimed. ``extra`` holds the table's extra columns (outbox type...)."""

    seq: int
    id: uuid.UUID
    queue: str | None
    partition_key: str | None
    state: ItemState
    attempts: int
    max_attempts: int | None
    available_at: datetime
    lease_token: uuid.UUID | None
    worker: str | None
    last_error: str | None
    errors: tuple[ErrorRecord, ...]
    created_at: datetime
    finished_at: datetime | None
    payload: Any
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Claimed:
    """An item held under a lease. Only the holder of ``lease_token`` may finish it."""

    item: Item
    lease_token: uuid.UUID
    lease_expires_at: datetime

    @property
    def id(self) -> uuid.UUID:
        return self.item.id


@dataclass(frozen=True, slots=True)
class ItemFilter:
    """Which items an admin operation touches. Every field narrows; an empty filter matches all.

    Values are always bound as query parameters. ``extra`` keys must be among the table spec's
    extra filter columns (e.g. ``type``, ``topic``, ``tenant_id`` on the outbox).
    """

    ids: Sequence[uuid.UUID] | None = None
    queue: str | None = None
    partition_key: str | None = None
    state: ItemState | None = None
    error: str | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_aware("created_before", self.created_before, FilterError)
        _require_aware("created_after", self.created_after, FilterError)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """``pending`` includes ``retrying`` (pending after a failed attempt); ``due`` counts what
    a claim could take now (pending and due, or claimed with an expired lease)."""

    pending: int
    claimed: int
    dead: int
    done: int
    due: int
    oldest_pending_age: timedelta | None
    retrying: int = 0


TxT_contra = TypeVar("TxT_contra", contravariant=True)
Progress = Callable[[int], None]


class ItemAdmin(Protocol):
    """Dead-letter, replay and retention operations over one table."""

    async def list(
        self, filter: ItemFilter | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[Item]: ...

    async def count(
        self, filter: ItemFilter | None = None, *, states: tuple[ItemState, ...] | None = None
    ) -> int: ...

    async def get(self, id: uuid.UUID) -> Item:
        """Raise :class:`NotFoundError` when no item has this id."""
        ...

    async def get_dead(self, id: uuid.UUID) -> Item:
        """Raise :class:`NotFoundError` when no dead item has this id. Indexed on every
        table, where :meth:`get` scans the outbox (which indexes dead rows' ids only)."""
        ...

    async def replay(
        self, filter: ItemFilter | None = None, *, progress: Progress | None = None
    ) -> int:
        """Dead items → pending, attempts reset, error history kept. Returns the count.
        ``progress`` is called with each batch's count (for a progress bar)."""
        ...

    async def purge(
        self, filter: ItemFilter | None = None, *, progress: Progress | None = None
    ) -> int:
        """Delete matching items; ``filter.state`` defaults to dead. Returns the count."""
        ...

    async def sweep(
        self,
        older_than: timedelta,
        *,
        states: tuple[ItemState, ...] = (ItemState.DONE, ItemState.DEAD),
        archive_to: str | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Retention: delete (or move to ``archive_to``) finished items older than
        ``older_than``."""
        ...

    async def stats(self) -> QueueStats: ...


class WorkQueue(ItemAdmin, Protocol[TxT_contra]):
    """One named queue of durable work items."""

    async def enqueue(
        self, items: Sequence[NewItem], *, tx: TxT_contra | None = None
    ) -> list[uuid.UUID]:
        """Insert items (an id already present is left alone). With ``tx`` the rows are
        written on the caller's connection inside its open transaction and never committed."""
        ...

    async def claim(self, limit: int, *, lease: timedelta, worker: str) -> list[Claimed]: ...

    async def heartbeat(self, claimed: Claimed, lease: timedelta) -> Claimed: ...

    async def complete(self, claimed: Claimed) -> None: ...

    async def fail(
        self, claimed: Claimed, error: str, *, policy: RetryPolicy | None = None
    ) -> ItemState:
        """Schedule a retry (pending) or dead-letter when attempts are used up; returns which."""
        ...

    async def dead_letter(self, claimed: Claimed, error: str) -> None: ...

    async def defer(
        self,
        claimed: Claimed,
        *,
        until: datetime | None = None,
        delay: timedelta | None = None,
        reason: str | None = None,
    ) -> None:
        """Postpone the item to ``until`` (or ``delay`` from now) and release the lease,
        spending no attempt; ``reason`` becomes its ``last_error`` (None keeps the last one)."""
        ...
