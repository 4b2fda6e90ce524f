"""The consumer inbox: process each event id at most once, inside the consumer's transaction.

Delivery is at least once, so consumers see repeats. ``Inbox.first_time`` records the event id
in the same transaction as the consumer's own writes: if that transaction commits, the id is
remembered and a repeat is skipped; if it rolls back, the id is forgotten and the redelivery is
processed. Concurrent deliveries of one id serialize on the primary key: the second waits for
the first to commit, then sees the id as processed.

Given an event catalog, ``Inbox.handle_event`` also hands the handler the event upcast to its
type's current version, so a consumer written against the current model reads old events too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from tether.core.envelope import Event
from tether.core.errors import ConfigError
from tether.core.ids import parse_id
from tether.store import drivers, sqlfile
from tether.store.sqlfile import Query

if TYPE_CHECKING:
    from tether.catalog import EventCatalog

T = TypeVar("T")
_CONSUMER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")


def _query(name: str, target: object) -> Query:
    return sqlfile.queries("tether.outbox", drivers.dialect_of(target))[f"inbox_{name}"]


class Inbox:
    """The inbox of one named consumer (e.g. ``"billing"``); with ``catalog``, the events it
    hands to handlers are upcast to their current version (:meth:`handle_event`)."""

    def __init__(self, consumer: str, *, catalog: EventCatalog | None = None) -> None:
        if not _CONSUMER.match(consumer):
            raise ConfigError(
                f"inbox consumer name {consumer!r} is invalid: 1-128 of letters, digits, . _ : -"
            )
        self.consumer = consumer
        self.catalog = catalog

    async def first_time(self, target: object, event_id: uuid.UUID | str) -> bool:
        """Record ``event_id`` in the caller's transaction; True if it was not processed before."""
        values = {"consumer": self.consumer, "event_id": parse_id(event_id), "now": _now()}
        rows = await drivers.execute(target, _query("claim", target), values)
        return bool(rows)

    def first_time_sync(self, target: object, event_id: uuid.UUID | str) -> bool:
        values = {"consumer": self.consumer, "event_id": parse_id(event_id), "now": _now()}
        rows = drivers.execute_sync(target, _query("claim", target), values)
        return bool(rows)

    async def handle(
        self, target: object, event_id: uuid.UUID | str, handler: Callable[[], Awaitable[T]]
    ) -> T | None:
        """Run ``handler`` unless this event was processed already; None when skipped."""
        if not await self.first_time(target, event_id):
            return None
        return await handler()

    def upcast(self, event: Event) -> Event:
        """``event`` in its type's current shape (unchanged without a catalog). Raises
        :class:`tether.core.errors.EventValidationError` when the catalog cannot upcast it:
        redelivering such an event cannot help, so dead-letter it rather than retry."""
        return event if self.catalog is None else self.catalog.upcast(event)

    async def handle_event(
        self, target: object, event: Event, handler: Callable[[Event], Awaitable[T]]
    ) -> T | None:
        """Run ``handler`` with ``event`` upcast to its current version, unless this event id
        was processed already; None when skipped. The upcast runs first, so an event the
        catalog refuses leaves no inbox row and can be replayed once the catalog is fixed."""
        current = self.upcast(event)
        if not await self.first_time(target, event.id):
            return None
        return await handler(current)

    def handle_event_sync(
        self, target: object, event: Event, handler: Callable[[Event], T]
    ) -> T | None:
        """:meth:`handle_event` for sync drivers (sqlite3, psycopg, SQLAlchemy sessions)."""
        current = self.upcast(event)
        if not self.first_time_sync(target, event.id):
            return None
        return handler(current)


async def sweep(target: object, older_than: timedelta) -> None:
    """Forget ids processed more than ``older_than`` ago (keep it above the redelivery horizon)."""
    await drivers.execute(target, _query("sweep", target), {"before": _now() - older_than})


def _now() -> datetime:
    return datetime.now(UTC)
