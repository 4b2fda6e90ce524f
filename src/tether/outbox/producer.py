"""``add_event``: write an event into the caller's transaction. It never commits.

The event exists if and only if the caller's transaction commits. The write is one statement
(one round trip); with an idempotency key it is two, and a repeated key in the same tenant
returns the event written the first time instead of adding another.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tether.core.envelope import DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_SOURCE, Event, make_event
from tether.core.errors import ConfigError, EventValidationError
from tether.core.ids import parse_id
from tether.ops import tracing
from tether.store import drivers, sqlfile
from tether.store.dialect import Dialect
from tether.store.sqlfile import Query

if TYPE_CHECKING:  # the catalog (and pydantic) load only when a catalog is configured
    from tether.catalog import EventCatalog


@dataclass(frozen=True, slots=True)
class ProducerPolicy:
    """Rules every ``add_event`` call in this process follows (set once with :func:`configure`)."""

    require_tenant: bool = False
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    source: str = DEFAULT_SOURCE
    catalog: EventCatalog | None = None
    """Validate payloads of registered types (and refuse unknown ones if it says so)."""
    tenancy: bool = False
    """Every event names a tenant, and on PostgreSQL the write scopes the transaction to it
    (``tether.tenant_id``, see :mod:`tether.tenancy`) so row-level security admits the row."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_payload_bytes <= 64 * 1024 * 1024:
            raise ConfigError(
                f"max_payload_bytes must be 1..67108864, got {self.max_payload_bytes}"
            )
        if self.catalog is not None and not callable(getattr(self.catalog, "resolve", None)):
            raise ConfigError(
                f"catalog must be a tether.catalog.EventCatalog, got {type(self.catalog).__name__}"
            )


_policy = ProducerPolicy()


def configure(policy: ProducerPolicy) -> ProducerPolicy:
    """Replace the process-wide producer policy; returns the previous one."""
    global _policy
    previous, _policy = _policy, policy
    return previous


def _build(type: str, payload: object, fields: dict[str, Any]) -> Event:
    if _policy.catalog is not None:
        payload = _catalogued(_policy.catalog, type, payload, fields)
    fields.setdefault("require_tenant", _policy.require_tenant or _policy.tenancy)
    fields.setdefault("max_payload_bytes", _policy.max_payload_bytes)
    fields.setdefault("source", _policy.source)
    return make_event(type, payload, **fields)


def _catalogued(
    catalog: EventCatalog, type: str, payload: object, fields: dict[str, Any]
) -> object:
    """The payload in its model's JSON form; the version and topic default to the catalog's."""
    entry = catalog.resolve(type, fields.get("version"))
    if entry is None:
        return payload
    topic = fields.get("topic")
    if topic is not None and topic != entry.topic:
        raise EventValidationError(
            f"event {type} is registered on topic {entry.topic!r}, not {topic!r}"
        )
    fields["version"] = entry.version
    fields["topic"] = entry.topic
    return catalog.check(entry, payload)


@dataclass(frozen=True, slots=True)
class EventRef:
    """What ``add_event`` wrote: the event's id, and whether this call created it."""

    id: uuid.UUID
    created: bool
    event: Event


def _queries(dialect: Dialect) -> dict[str, Query]:
    return sqlfile.queries("tether.outbox", dialect)


def _values(event: Event, max_attempts: int | None) -> dict[str, object]:
    return {
        "id": event.id,
        "partition_key": event.partition_key,
        "tenant_id": event.tenant_id,
        "topic": event.topic,
        "type": event.type,
        "version": event.version,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "source": event.source,
        "payload": event.data,
        "user_id": event.user_id,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "traceparent": event.traceparent,
        "idempotency_key": event.idempotency_key,
        "created_at": event.created_at,
        "max_attempts": max_attempts,
    }


def _plan(target: object, event: Event, notify: bool) -> tuple[Query, Query, Query]:
    dialect = drivers.dialect_of(target)
    q = _queries(dialect)
    # With tenancy, the PostgreSQL statements set the tenant scope themselves (same round trips).
    scoped = "_tenant" if _policy.tenancy and dialect == "postgres" else ""
    insert = (
        q["insert_notify" + scoped] if notify and dialect == "postgres" else q["insert" + scoped]
    )
    return insert, q["claim_key" + scoped], q["find_key"]


def _key_values(event: Event) -> dict[str, object]:
    return {
        "tenant_id": event.tenant_id,
        "key": event.idempotency_key,
        "event_id": event.id,
        "created_at": event.created_at,
    }


# The write is one sans-I/O routine: it yields (query, values) and receives the rows, so the
# async and the sync entry points below only differ in how they execute a query.
_Steps = Generator[tuple[Query, dict[str, object]], drivers.Rows, EventRef]


def _steps(target: object, event: Event, notify: bool, max_attempts: int | None) -> _Steps:
    insert, claim_key, find_key = _plan(target, event, notify)
    if event.idempotency_key is not None:
        claimed = yield claim_key, _key_values(event)
        if not claimed:
            rows = yield find_key, _key_values(event)
            return EventRef(parse_id(rows[0][0]), created=False, event=event)
    yield insert, _values(event, max_attempts)
    return EventRef(event.id, created=True, event=event)


@tracing.traced_add_event  # a span whose context is the event's traceparent (otel extra)
async def add_event(
    target: object,
    type: str,
    payload: object,
    *,
    notify: bool = False,
    max_attempts: int | None = None,
    **fields: Any,
) -> EventRef:
    """Add an event to the outbox inside the transaction ``target`` has open.

    ``target`` is a SQLAlchemy ``AsyncSession``/``AsyncConnection``, an asyncpg or psycopg
    async connection, or an aiosqlite connection. ``fields`` are those of
    :func:`tether.core.envelope.make_event` (``aggregate_type``, ``aggregate_id``,
    ``tenant_id``, ``topic``, ``idempotency_key``, ...). ``notify=True`` wakes listening relays
    after commit (one notification per transaction, however many events); leave it off under
    heavy write load, where relays poll instead (see docs/outbox.md).
    """
    steps = _steps(target, _build(type, payload, fields), notify, max_attempts)
    rows: drivers.Rows | None = None
    try:
        while True:
            query, values = steps.send(rows)  # type: ignore[arg-type]
            rows = await drivers.execute(target, query, values)
    except StopIteration as done:
        result: EventRef = done.value
        return result


@tracing.traced_add_event_sync
def add_event_sync(
    target: object,
    type: str,
    payload: object,
    *,
    notify: bool = False,
    max_attempts: int | None = None,
    **fields: Any,
) -> EventRef:
    """:func:`add_event` for synchronous handles: SQLAlchemy ``Session``/``Connection``,
    psycopg ``Connection``, sqlite3 ``Connection``."""
    steps = _steps(target, _build(type, payload, fields), notify, max_attempts)
    rows: drivers.Rows | None = None
    try:
        while True:
            query, values = steps.send(rows)  # type: ignore[arg-type]
            rows = drivers.execute_sync(target, query, values)
    except StopIteration as done:
        result: EventRef = done.value
        return result
