"""Consumer(catalog=...): handlers see the current version; what cannot be upcast is
dead-lettered as undecodable with the reason. In-memory source, a transaction that commits."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from tether.catalog import EventCatalog
from tether.consume import Consumer, RedeliveryPolicy
from tether.consume.memory import MemorySource
from tether.core.envelope import Event, make_event
from tether.core.errors import ConfigError
from tether.outbox import ProducerPolicy
from tether.outbox.inbox import Inbox


class FakeInbox(Inbox):
    def __init__(self) -> None:
        super().__init__("unit")
        self.seen: set[str] = set()

    async def first_time(self, target: object, event_id: Any) -> bool:
        fresh = str(event_id) not in self.seen
        self.seen.add(str(event_id))
        return fresh


class V1(BaseModel):
    order_id: str
    total: int


class V2(BaseModel):
    order_id: str
    total_cents: int


def make_catalog(unknown: Any = "accept") -> EventCatalog:
    catalog = EventCatalog(unknown=unknown)
    catalog.register(model=V1, type="OrderPlaced", version=1, topic="order")
    catalog.register(model=V2, type="OrderPlaced", version=2, topic="order")
    catalog.add_upcaster(
        "OrderPlaced", 1, lambda p: {"order_id": p["order_id"], "total_cents": p["total"] * 100}
    )
    return catalog


@contextlib.asynccontextmanager
async def begin() -> AsyncIterator[object]:
    yield object()


def consumer(source: MemorySource, handled: list[Event], catalog: EventCatalog | None) -> Consumer:
    async def handler(event: Event, tx: object) -> None:
        handled.append(event)

    policy = RedeliveryPolicy(backoff=(0.05,), max_deliveries=2, jitter=0)
    return Consumer(
        source,
        handler,
        transaction=begin,
        inbox=FakeInbox(),
        policy=policy,
        wait=0.05,
        catalog=catalog,
    )


async def test_old_versions_reach_the_handler_upcast() -> None:
    source, handled = MemorySource(), []
    old = make_event("OrderPlaced", {"order_id": "a", "total": 2}, version=1, topic="order")
    current = make_event(
        "OrderPlaced", {"order_id": "b", "total_cents": 7}, version=2, topic="order"
    )
    other = make_event("Unregistered", {"x": 1})
    for event in (old, current, other):
        source.publish(event)
    outcomes = await consumer(source, handled, make_catalog()).run_once()
    assert [o.verdict for o in outcomes] == ["acked", "acked", "acked"]
    by_id = {e.id: e for e in handled}
    assert by_id[old.id].version == 2
    assert by_id[old.id].payload == {"order_id": "a", "total_cents": 200}
    assert by_id[current.id].data == current.data  # current and in shape: bytes as received
    assert by_id[other.id].payload == {"x": 1}  # the catalog accepts unknown types


async def test_without_a_catalog_events_pass_as_they_are() -> None:
    source, handled = MemorySource(), []
    old = make_event("OrderPlaced", {"order_id": "a", "total": 2}, version=1)
    source.publish(old)
    await consumer(source, handled, None).run_once()
    assert handled[0].version == 1 and handled[0].data == old.data


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            make_event("OrderPlaced", {"order_id": "a"}, version=1),
            "event catalog: upcaster OrderPlaced v1->v2 failed: KeyError: 'total'",
        ),
        (
            make_event("OrderPlaced", {"order_id": "a", "total_cents": "x"}, version=2),
            "event catalog: event OrderPlaced v2 payload is invalid: total_cents: Input should be a valid integer",
        ),
        (
            make_event("OrderPlaced", {}, version=3),
            "event catalog: event OrderPlaced v3 is newer than the catalog's current v2",
        ),
        (
            make_event("Unregistered", {}),
            "event catalog: event type 'Unregistered' is not in the event catalog",
        ),
    ],
)
async def test_what_cannot_be_upcast_is_dead_lettered_as_undecodable(
    event: Event, reason: str
) -> None:
    source, handled = MemorySource(), []
    source.publish(event)
    outcomes = await consumer(source, handled, make_catalog(unknown="refuse")).run_once()
    assert [o.verdict for o in outcomes] == ["dead"] and not handled
    [dead] = await source.list()
    assert dead.kind == "undecodable" and dead.event_id == str(event.id)
    assert dead.reason.startswith(reason), dead.reason


def test_producer_policy_refuses_something_else_as_catalog() -> None:
    with pytest.raises(
        ConfigError, match=r"catalog must be a tether\.catalog\.EventCatalog, got dict"
    ):
        ProducerPolicy(catalog={})  # type: ignore[arg-type]
