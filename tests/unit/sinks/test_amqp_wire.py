"""The RabbitMQ sink's hand-encoded publish frames are byte for byte what pamqp encodes."""

from __future__ import annotations

import pytest
from pamqp import body as pbody
from pamqp import commands as spec
from pamqp import frame as pframe
from pamqp import header as pheader

from tether.core.envelope import Event, make_event
from tether.sinks import _amqp_wire as wire
from tether.sinks.rabbitmq import properties


def pamqp_frames(channel: int, exchange: str, key: str, event: Event, max_body: int) -> bytes:
    body = event.data
    parts = [
        pframe.marshal(
            spec.Basic.Publish(exchange=exchange, routing_key=key, mandatory=True), channel
        ),
        pframe.marshal(pheader.ContentHeader(0, len(body), properties(event)), channel),
    ]
    for start in range(0, len(body), max_body):
        parts.append(pframe.marshal(pbody.ContentBody(body[start : start + max_body]), channel))
    return b"".join(parts)


EVENTS = [
    make_event("OrderPlaced", {"n": 1}, topic="order"),
    make_event(
        "OrderPlaced",
        {"note": "é" * 300},
        aggregate_type="order",
        aggregate_id="o-1",
        tenant_id="acme",
        user_id="Zoë-7",
        correlation_id="c-1",
        causation_id="c-0",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        version=3,
    ),
]


@pytest.mark.parametrize("event", EVENTS, ids=["plain", "every-attribute"])
@pytest.mark.parametrize("max_body", [131_064, 100])
def test_frames_match_pamqp(event: Event, max_body: int) -> None:
    ours = wire.publish_frames(7, wire.shortstr("shop"), "order.placed", event, max_body)
    assert ours == pamqp_frames(7, "shop", "order.placed", event, max_body)


def test_a_shortstr_over_255_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="over AMQP's 255"):
        wire.shortstr("é" * 128)
