"""Routing: glob rules over topic and type; unknown sinks refused at start-up."""

from __future__ import annotations

import pytest

from tether.core.envelope import make_event
from tether.core.errors import ConfigError
from tether.outbox.routing import Route, Router


def test_every_matching_route_contributes() -> None:
    router = Router.from_mapping(
        {"orders.*": ["nats"], "type:*Failed": ["slack"], "*": ["log"]}, ["nats", "slack", "log"]
    )
    assert router.sinks_for(make_event("OrderPlaced", {}, topic="orders.eu")) == {"nats", "log"}
    assert router.sinks_for(make_event("PaymentFailed", {}, topic="billing")) == {"slack", "log"}


def test_no_match_gives_empty_set() -> None:
    router = Router([Route(("nats",), topic="orders.*")], ["nats"])
    assert router.sinks_for(make_event("X", {}, topic="billing")) == frozenset()


def test_unknown_sink_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown sink\(s\) \['kafka'\]"):
        Router.from_mapping({"*": ["kafka"]}, ["nats"])


def test_routes_by_topic_and_type_alone_for_dispatchers_without_events() -> None:
    router = Router.from_mapping({"orders.*": ["hook"], "type:*Failed": ["ops"]}, ["hook", "ops"])
    assert router.sinks_for_kind("orders.eu", "PaymentFailed") == {"hook", "ops"}
    event = make_event("OrderPlaced", {}, topic="orders.eu")
    assert router.sinks_for_kind(event.topic, event.type) == router.sinks_for(event) == {"hook"}
