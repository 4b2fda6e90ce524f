"""Registering event types, validating payloads, unknown types and upcasting."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from tether.catalog import EventCatalog
from tether.core.envelope import make_event
from tether.core.errors import ConfigError, EventValidationError


class Line(BaseModel):
    sku: str
    quantity: int


class OrderV1(BaseModel):
    order_id: str
    total: int


class OrderV2(BaseModel):
    order_id: str
    total_cents: int
    lines: list[Line] = []


class OrderV3(BaseModel):
    order_id: str
    amount: dict[str, Any]
    lines: list[Line] = []


def three_versions() -> EventCatalog:
    catalog = EventCatalog()
    catalog.register(model=OrderV1, type="OrderPlaced", version=1, topic="order")
    catalog.register(model=OrderV2, type="OrderPlaced", version=2, topic="order")
    catalog.register(model=OrderV3, type="OrderPlaced", version=3, topic="order")

    @catalog.upcaster("OrderPlaced", from_version=1)
    def one_to_two(p: dict[str, Any]) -> dict[str, Any]:
        return {"order_id": p["order_id"], "total_cents": p["total"] * 100}

    @catalog.upcaster("OrderPlaced", from_version=2)
    def two_to_three(p: dict[str, Any]) -> dict[str, Any]:
        return {
            "order_id": p["order_id"],
            "amount": {"cents": p["total_cents"], "currency": "EUR"},
            "lines": p.get("lines", []),
        }

    return catalog


@pytest.mark.parametrize(
    "name",
    ["orderPlaced", "order_placed", "Order.Placed", "ORDERPLACED", "", "Order-Placed", "1Order"],
)
def test_type_names_must_be_pascal_case(name: str) -> None:
    catalog = EventCatalog()
    with pytest.raises(ConfigError, match="is not PascalCase") as err:
        catalog.register(model=OrderV1, type=name, topic="order")
    assert repr(name) in str(err.value)
    with pytest.raises(ConfigError, match="is not PascalCase"):
        catalog.event(name, topic="order")


def test_decorator_registers_and_returns_the_model() -> None:
    catalog = EventCatalog()

    @catalog.event("OrderPlaced", version=2, topic="order", example={"order_id": "a", "total": 1})
    class Placed(BaseModel):
        """Placed, with a docstring."""

        order_id: str
        total: int

    entry = catalog.get("OrderPlaced")
    assert entry is not None and entry.model is Placed and entry.version == 2
    assert entry.example == {"order_id": "a", "total": 1}
    assert entry.description == "Placed, with a docstring."
    assert entry.key == "OrderPlacedV2"
    assert "OrderPlaced" in catalog and "Other" not in catalog


def test_duplicates_bad_versions_topics_and_examples_are_refused() -> None:
    catalog = EventCatalog()
    catalog.register(model=OrderV1, type="OrderPlaced", topic="order")
    with pytest.raises(ConfigError, match="OrderPlaced version 1 is already registered"):
        catalog.register(model=OrderV2, type="OrderPlaced", topic="order")
    with pytest.raises(ConfigError, match="every version of a type goes on one topic"):
        catalog.register(model=OrderV2, type="OrderPlaced", version=2, topic="orders")
    for bad in (0, -1, True, "2", 10_001):
        with pytest.raises(ConfigError, match="event version must be an integer"):
            catalog.register(model=OrderV2, type="Other", version=bad, topic="order")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="event topic 'a b' is invalid"):
        catalog.register(model=OrderV2, type="Other", topic="a b")
    with pytest.raises(ConfigError, match="must be a pydantic model class"):
        catalog.register(model=dict, type="Other", topic="order")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"example of Other v1 is invalid: .*total"):
        catalog.register(model=OrderV1, type="Other", topic="order", example={"order_id": "x"})
    with pytest.raises(ConfigError, match="unknown must be 'accept' or 'refuse'"):
        EventCatalog(unknown="ignore")  # type: ignore[arg-type]
    catalog.add_upcaster("OrderPlaced", 1, lambda p: p)
    with pytest.raises(ConfigError, match="upcaster from OrderPlaced v1 is already registered"):
        catalog.add_upcaster("OrderPlaced", 1, lambda p: p)


def test_validate_names_the_field_path() -> None:
    catalog = three_versions()
    with pytest.raises(EventValidationError) as err:
        catalog.validate(
            "OrderPlaced",
            2,
            {"order_id": "o", "total_cents": 1, "lines": [{"sku": "a", "quantity": "x"}]},
        )
    assert (
        "OrderPlaced v2 payload is invalid: lines[0].quantity: Input should be a valid integer"
        in str(err.value)
    )
    with pytest.raises(EventValidationError, match=r"order_id: Field required"):
        catalog.validate("OrderPlaced", 1, {"total": 1})
    with pytest.raises(EventValidationError, match=r"\(payload\): Input should be"):
        catalog.validate("OrderPlaced", 1, [1, 2])
    with pytest.raises(
        EventValidationError, match=r"no version 7 in the catalog \(known: v1, v2, v3\)"
    ):
        catalog.validate("OrderPlaced", 7, {})


def test_validate_returns_the_models_json_form() -> None:
    catalog = three_versions()
    # None = the current version; defaults are filled in, lax input coerced to the model's types.
    out = catalog.validate("OrderPlaced", None, {"order_id": "o", "amount": {"c": 1}})
    assert out == {"order_id": "o", "amount": {"c": 1}, "lines": []}
    assert catalog.validate("OrderPlaced", 1, OrderV1(order_id="o", total=2)) == {
        "order_id": "o",
        "total": 2,
    }
    assert catalog.validate("OrderPlaced", 1, b'{"order_id": "o", "total": "3"}') == {
        "order_id": "o",
        "total": 3,
    }


def test_unknown_types_are_accepted_or_refused_with_close_matches() -> None:
    accepting = three_versions()
    assert accepting.validate("Whatever", None, {"any": 1}) == {"any": 1}
    refusing = EventCatalog(unknown="refuse")
    refusing.register(model=OrderV1, type="OrderPlaced", topic="order")
    refusing.register(model=OrderV1, type="OrderPaid", topic="order")
    with pytest.raises(EventValidationError) as err:
        refusing.validate("OrderPlacd", None, {})
    assert "'OrderPlacd' is not in the event catalog" in str(err.value)
    assert "did you mean OrderPlaced, OrderPaid?" in str(err.value)
    with pytest.raises(EventValidationError) as err:
        refusing.validate("Zzz", None, {})
    assert "did you mean" not in str(err.value)


def test_upcasting_chains_every_version_to_the_current() -> None:
    catalog = three_versions()
    old = make_event("OrderPlaced", {"order_id": "o", "total": 2}, version=1)
    new = catalog.upcast(old)
    assert new.version == 3 and new.id == old.id and new.topic == old.topic
    assert new.payload == {
        "order_id": "o",
        "amount": {"cents": 200, "currency": "EUR"},
        "lines": [],
    }
    mid = catalog.upcast(make_event("OrderPlaced", {"order_id": "o", "total_cents": 5}, version=2))
    assert mid.payload["amount"] == {"cents": 5, "currency": "EUR"}
    # Already current and in shape: the very same event (its bytes are not re-encoded).
    current = make_event("OrderPlaced", {"order_id": "o", "amount": {}, "lines": []}, version=3)
    assert catalog.upcast(current) is current
    unknown = make_event("Other", {"x": 1})
    assert catalog.upcast(unknown) is unknown


def test_upcasting_failures_say_what_went_wrong() -> None:
    catalog = three_versions()
    with pytest.raises(EventValidationError, match=r"upcaster OrderPlaced v1->v2 failed: KeyError"):
        catalog.upcast(make_event("OrderPlaced", {"order_id": "o"}, version=1))
    with pytest.raises(EventValidationError, match="v4 is newer than the catalog's current v3"):
        catalog.upcast(make_event("OrderPlaced", {}, version=4))
    with pytest.raises(EventValidationError, match=r"OrderPlaced v3 payload is invalid: amount"):
        catalog.upcast(make_event("OrderPlaced", {"order_id": "o", "amount": 1}, version=3))
    gap = EventCatalog()
    gap.register(model=OrderV1, type="OrderPlaced", topic="order")
    gap.register(model=OrderV2, type="OrderPlaced", version=2, topic="order")
    with pytest.raises(EventValidationError, match="OrderPlaced v1 has no upcaster to v2"):
        gap.upcast(make_event("OrderPlaced", {"order_id": "o", "total": 1}, version=1))
    refusing = EventCatalog(unknown="refuse")
    with pytest.raises(EventValidationError, match="'Other' is not in the event catalog"):
        refusing.upcast(make_event("Other", {}))


def test_types_are_listed_by_topic_type_and_version() -> None:
    catalog = three_versions()
    catalog.register(model=OrderV1, type="Audit", topic="audit")
    assert [(e.topic, e.type, e.version) for e in catalog.types()] == [
        ("audit", "Audit", 1),
        ("order", "OrderPlaced", 1),
        ("order", "OrderPlaced", 2),
        ("order", "OrderPlaced", 3),
    ]
    current = catalog.current("OrderPlaced")
    assert current is not None and current.version == 3


def test_an_accepted_unknown_type_is_logged_once_per_type_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from prometheus_client import REGISTRY

    def seen(where: str) -> float:
        value = REGISTRY.get_sample_value("tether_catalog_unknown_events_total", {"where": where})
        return value or 0.0

    catalog = three_versions()
    before_produce, before_consume = seen("produce"), seen("consume")
    with caplog.at_level("WARNING", logger="tether.catalog"):
        for _ in range(3):
            assert catalog.validate("ShipmentLost", None, {"a": 1}) == {"a": 1}
        event = make_event("ShipmentLost", {"a": 1})
        assert catalog.upcast(event) is event
    warnings = [r.getMessage() for r in caplog.records if r.name == "tether.catalog"]
    assert len(warnings) == 1, warnings
    assert "'ShipmentLost' is not in the event catalog" in warnings[0]
    assert "unknown='refuse'" in warnings[0]
    assert seen("produce") - before_produce == 3
    assert seen("consume") - before_consume == 1
