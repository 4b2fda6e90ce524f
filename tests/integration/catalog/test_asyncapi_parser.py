"""The AsyncAPI documents ``tether catalog`` writes pass the official parser (@asyncapi/parser).

A deliberately broken document must fail it, which proves the parser really ran.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from examples.catalog_events import catalog as example_catalog
from pydantic import BaseModel

from tests.support import asyncapi_parser
from tether.catalog import EventCatalog, asyncapi, render


class AddressV1(BaseModel):
    city: str


class Address(BaseModel):
    city: str
    country: str


class Line(BaseModel):
    sku: str
    quantity: int
    children: list[Line] = []  # a recursive model: its $ref points at itself


class ShippedV1(BaseModel):
    to: AddressV1


class Shipped(BaseModel):
    to: Address
    lines: list[Line]
    note: str | None = None


def tricky_catalog() -> EventCatalog:
    """Two versions that each have an ``Address`` of their own, a recursive model, and topics
    with the : and / a channel id may not hold."""
    catalog = EventCatalog(title="Tricky", version="2.1.0")
    catalog.register(
        model=ShippedV1,
        type="OrderShipped",
        version=1,
        topic="shop:orders/shipped",
        example={"to": {"city": "Oslo"}},
    )
    catalog.register(
        model=Shipped,
        type="OrderShipped",
        version=2,
        topic="shop:orders/shipped",
        example={"to": {"city": "Oslo", "country": "NO"}, "lines": [{"sku": "a", "quantity": 1}]},
    )
    catalog.register(model=AddressV1, type="AddressChanged", topic="shop_orders_shipped")
    return catalog


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    "make", [lambda: example_catalog, tricky_catalog], ids=["example", "tricky"]
)
def test_generated_documents_have_no_errors(tmp_path: Path, suffix: str, make: Any) -> None:
    doc = asyncapi.build(make())
    path = tmp_path / f"events{suffix}"
    path.write_text(render.to_yaml(doc) if suffix == ".yaml" else render.to_json(doc))
    assert asyncapi_parser.errors(path) == []


def test_the_yaml_reads_back_as_the_document(tmp_path: Path) -> None:
    doc = asyncapi.build(tricky_catalog())
    assert yaml.safe_load(render.to_yaml(doc)) == json.loads(render.to_json(doc))


def test_document_shape() -> None:
    doc = asyncapi.build(tricky_catalog())
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"] == {
        "title": "Tricky",
        "version": "2.1.0",
        "description": doc["info"]["description"],
    }
    # One channel per topic; topics differing only in : and / get distinct ids.
    assert {c["address"] for c in doc["channels"].values()} == {
        "shop:orders/shipped",
        "shop_orders_shipped",
    }
    assert len(doc["channels"]) == 2
    schemas = doc["components"]["schemas"]
    assert {"OrderShippedV1.AddressV1", "OrderShippedV2.Address", "OrderShippedV2.Line"} <= set(
        schemas
    )
    assert schemas["OrderShippedV2.Line"]["properties"]["children"]["items"] == {
        "$ref": "#/components/schemas/OrderShippedV2.Line"
    }
    message = doc["components"]["messages"]["OrderShippedV2"]
    assert message["payload"] == {"$ref": "#/components/schemas/OrderShippedV2"}
    assert message["headers"]["properties"]["eventversion"]["const"] == "2"
    assert message["headers"]["properties"]["type"]["const"] == "OrderShipped"
    assert message["examples"][0]["payload"]["to"] == {"city": "Oslo", "country": "NO"}
    assert "$defs" not in json.dumps(doc)


def test_a_broken_document_is_refused(tmp_path: Path) -> None:
    doc = asyncapi.build(example_catalog)
    del doc["info"]["version"]
    doc["channels"]["order"]["messages"]["Ghost"] = {"$ref": "#/components/messages/Ghost"}
    path = tmp_path / "broken.json"
    path.write_text(render.to_json(doc))
    found = asyncapi_parser.errors(path)
    messages = " | ".join(d["message"] for d in found)
    assert "version" in messages, messages
    assert "#/components/messages/Ghost" in messages, messages


def test_without_node_the_test_fails_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncapi_parser.shutil, "which", lambda name: None)
    with pytest.raises(AssertionError, match="node and npm are required"):
        asyncapi_parser.errors(Path("unused.yaml"))
