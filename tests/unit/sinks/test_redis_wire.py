"""The Redis Streams sink's hand-written RESP: the fast field encoding equals the plain one."""

from __future__ import annotations

import pytest

from tether.core.envelope import Event, make_event
from tether.sinks import _redis_wire as wire

EVENTS = {
    "plain": make_event("OrderPlaced", {"n": 1}, topic="order"),
    "every-attribute": make_event(
        "OrderPlaced",
        {"n": 2},
        aggregate_type="order",
        aggregate_id="o-1",
        tenant_id="acme",
        user_id="u-7",
        correlation_id="c-1",
        causation_id="c-0",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        version=3,
    ),
    "non-ascii": make_event("OrderPlaced", {}, aggregate_id="Zoë's order", user_id="Zoë"),
}


@pytest.mark.parametrize("event", EVENTS.values(), ids=EVENTS.keys())
def test_fast_fields_equal_the_plain_ones(event: Event) -> None:
    assert wire.fields(event) == wire.reference_fields(event)
    n, text = wire.fields(event)
    assert n == 2 * len(event.cloudevent_attributes())
    assert text.encode().count(b"\r\n") == 2 * n


def test_a_call_is_one_resp_array() -> None:
    events = list(EVENTS.values())
    packed = wire.call("sha1", "s:order", events, "120000", ("MAXLEN", "~", "1000"))
    head, _, rest = packed.partition(b"\r\n")
    fields = sum(wire.fields(e)[0] + 3 for e in events)
    assert head == b"*%d" % (1 + 3 + len(events) + 4 + fields)
    assert rest.startswith(b"$7\r\nEVALSHA\r\n$4\r\nsha1\r\n$1\r\n4\r\n$7\r\ns:order\r\n")
    assert b"$%d\r\n{s:order}:dedup:%s\r\n" % (16 + 36, str(events[0].id).encode()) in rest
    assert rest.endswith(b"$4\r\ndata\r\n$2\r\n{}\r\n")


def test_the_status_reply_pairs_errors_with_refused_events() -> None:
    reply = [b"+!=!", b"WRONGTYPE a", b"OOM b"]
    assert wire.read_status(reply) == [
        ("+", None),
        ("!", "WRONGTYPE a"),
        ("=", None),
        ("!", "OOM b"),
    ]
