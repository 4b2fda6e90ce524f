"""The pure parts of the gateway: frames, channel names, routing rules, recovery decisions."""

from __future__ import annotations

import pytest

from tether.core.envelope import make_event
from tether.realtime import protocol
from tether.realtime.backplane import Position, decide
from tether.realtime.channels import BadChannel, Kind, from_key, parse, route
from tether.realtime.routing import Routes, Unroutable


def test_frames_parse_and_refuse() -> None:
    commands = protocol.parse(b'{"id":1,"connect":{"token":"t"}}\n{}\n', max_commands=10)
    assert [(c.id, c.method) for c in commands] == [(1, "connect"), (0, None)]
    for bad in (
        b"",
        b"x",
        b"[]",
        b'{"id":true,"connect":{}}',
        b'{"id":1,"a":1}',
        b'{"connect":{}}',
    ):
        with pytest.raises(protocol.BadFrame):
            protocol.parse(bad, max_commands=10)
    with pytest.raises(protocol.BadFrame, match="at most 2"):
        protocol.parse(b"{}\n{}\n{}", max_commands=2)
    assert protocol.with_offset(b'{"data":1}', 7) == b'{"offset":7,"data":1}'
    assert protocol.with_offset(b'{"data":1}', 0) == b'{"data":1}'


def test_channel_names() -> None:
    assert parse("user:u-1", org=None).kind is Kind.USER
    topic = parse("topic:requirements", org="acme")
    assert topic.public == "topic:requirements" and topic.key == "org:acme/topic:requirements"
    assert from_key(topic.key) == topic
    for bad in ("x", "user:", "user:a/b", "org:" + "a" * 200, "topic:Upper", "chan:x", 5):
        with pytest.raises(BadChannel):
            parse(bad, org="acme")
    with pytest.raises(BadChannel):
        parse("topic:news", org=None)
    assert route("topic:news", tenant="globex").key == "org:globex/topic:news"


def test_routes() -> None:
    routes = Routes({"Placed": ["org:{tenant}", "topic:orders"], "*": ["user:{user}"]})
    event = make_event("Placed", {}, topic="order", tenant_id="acme", user_id="u1")
    assert [c.key for c in routes.channels(event)] == [
        "org:acme",
        "org:acme/topic:orders",
        "user:u1",
    ]
    no_tenant = make_event("Placed", {}, topic="order")
    with pytest.raises(Unroutable, match="tenant"):
        routes.channels(no_tenant)
    assert routes.channels(make_event("Other", {}, topic="x")) == []  # "*" skips: no user
    for bad in (
        {"Placed": "org:x"},
        {"Placed": ["org:{nope}"]},
        {"Placed": ["queue:x"]},
        {"bad type!": ["org:x"]},
        {"Placed": ["topic:Bad"]},
    ):
        with pytest.raises(ValueError):
            Routes(bad)


def test_recovery_is_never_partial() -> None:
    top = Position("e", 5)
    entries = [(3, b"c"), (4, b"d"), (5, b"e")]
    assert decide(top, Position("e", 2), entries).publications == entries
    assert not decide(top, Position("e", 1), entries).recovered  # offset 2 was trimmed
    assert not decide(top, Position("x", 2), entries).recovered
    assert not decide(top, Position("e", 6), entries).recovered
    assert not decide(top, Position("e", 2), [(3, b"c"), (5, b"e")]).recovered


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536])
def test_pre_built_text_frames_parse_as_the_websockets_library_reads_them(size: int) -> None:
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    payload = b"x" * size
    stream = StreamReader()
    stream.feed_data(protocol.text_frame(payload))
    stream.feed_eof()
    parser = Frame.parse(stream.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    assert frame.opcode is Opcode.TEXT and frame.fin and not frame.rsv1
    assert frame.data == payload
