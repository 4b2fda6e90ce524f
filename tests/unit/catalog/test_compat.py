"""The compatibility rules of ``tether catalog --check``: what breaks, what does not."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from tether.catalog import EventCatalog, compat
from tether.core.errors import ConfigError


def one(model: type[BaseModel], topic: str = "order", version: int = 1) -> EventCatalog:
    catalog = EventCatalog()
    catalog.register(model=model, type="OrderPlaced", version=version, topic=topic)
    return catalog


def changes(before: type[BaseModel], after: type[BaseModel], **kw: Any) -> list[str]:
    snap = compat.loads(compat.dumps(compat.snapshot(one(before))), "snap.json")
    return [str(b) for b in compat.breaks(snap, one(after, **kw))]


class Address(BaseModel):
    city: str
    zip: str


class AddressNoZip(BaseModel):
    city: str


class Kind(str, Enum):  # noqa: UP042 - the str mixin is what pydantic users write
    a = "a"
    b = "b"


class KindA(str, Enum):  # noqa: UP042
    a = "a"


class Base(BaseModel):
    order_id: str
    total: int
    kind: Kind = Kind.a
    ship_to: Address | None = None
    lines: list[Address] = []


class Same(BaseModel):
    order_id: str
    total: int
    kind: Kind = Kind.a
    ship_to: Address | None = None
    lines: list[Address] = []


class AddsOptional(Same):
    note: str | None = None


class AddsRequired(Same):
    channel: str


class RemovesField(BaseModel):
    order_id: str
    kind: Kind = Kind.a
    ship_to: Address | None = None
    lines: list[Address] = []


class ChangesType(BaseModel):
    order_id: str
    total: str
    kind: Kind = Kind.a
    ship_to: Address | None = None
    lines: list[Address] = []


class WidensType(BaseModel):
    order_id: str
    total: int | str
    kind: Kind = Kind.a
    ship_to: Address | None = None
    lines: list[Address] = []


class NarrowsEnum(BaseModel):
    order_id: str
    total: int
    kind: KindA = KindA.a
    ship_to: Address | None = None
    lines: list[Address] = []


class NestedRemoval(BaseModel):
    order_id: str
    total: int
    kind: Kind = Kind.a
    ship_to: AddressNoZip | None = None
    lines: list[AddressNoZip] = []


class LiteralKind(BaseModel):
    mode: Literal["x", "y"]


class LiteralKindX(BaseModel):
    mode: Literal["x"]


def test_an_unchanged_model_or_an_optional_field_is_compatible() -> None:
    assert changes(Base, Same) == []
    assert changes(Base, AddsOptional) == []


def test_breaking_changes_are_each_named() -> None:
    assert changes(Base, AddsRequired) == ["OrderPlaced v1 at channel: new required field"]
    assert changes(Base, RemovesField) == ["OrderPlaced v1 at total: field removed"]
    assert changes(Base, ChangesType) == [
        "OrderPlaced v1 at total: type changed from integer to string"
    ]
    assert changes(Base, WidensType) == [
        "OrderPlaced v1 at total: type changed from integer to integer | string"
    ]
    assert changes(Base, NarrowsEnum) == ['OrderPlaced v1 at kind: enum narrowed: "b" removed']
    assert changes(LiteralKind, LiteralKindX) == [
        'OrderPlaced v1 at mode: enum narrowed: "y" removed'
    ]
    assert changes(Base, NestedRemoval) == [
        "OrderPlaced v1 at lines[].zip: field removed",
        "OrderPlaced v1 at ship_to.zip: field removed",
    ]
    assert changes(Base, Same, topic="orders") == [
        "OrderPlaced v1: topic changed from 'order' to 'orders'"
    ]


def test_a_new_version_is_the_way_to_break() -> None:
    snap = compat.snapshot(one(Base))
    catalog = one(Base)
    catalog.register(model=ChangesType, type="OrderPlaced", version=2, topic="order")
    assert compat.breaks(snap, catalog) == []
    assert compat.stale(snap, catalog) == ["OrderPlaced v2"]
    assert [str(b) for b in compat.breaks(snap, one(ChangesType, version=2))] == [
        "OrderPlaced v1: removed from the catalog (old events use it)"
    ]


def test_a_snapshot_that_is_not_one_is_named() -> None:
    with pytest.raises(ConfigError, match=r"snapshot s\.json is not JSON"):
        compat.loads("{", "s.json")
    with pytest.raises(ConfigError, match="is not a tether catalog snapshot"):
        compat.loads("[]", "s.json")
    with pytest.raises(ConfigError, match="has no valid 'types' map"):
        compat.loads('{"format": 1, "types": {"A": {"1": {}}}}', "s.json")
