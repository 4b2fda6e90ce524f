"""Wire helpers of the JetStream sink, without a server."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from tether.core.envelope import Event, make_event
from tether.core.errors import ConfigError
from tether.sinks import _nats_wire as wire

FULL = make_event(
    "OrderPlaced",
    {"a": 1},
    aggregate_type="order",
    aggregate_id="o-1",
    tenant_id="acme",
    user_id="u-1",
    correlation_id="c-1",
    causation_id="k-1",
    version=2,
    source="shop",
    traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
)
BARE = make_event("Ping", {})


def header_lines(block: bytes) -> list[str]:
    text = block.decode()
    assert text.startswith("NATS/1.0\r\n")
    assert text.endswith("\r\n\r\n")
    return sorted(text[len("NATS/1.0\r\n") : -4].split("\r\n"))


AT = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def pinned(event: Event, id: int) -> Event:
    return dataclasses.replace(event, id=uuid.UUID(int=id), created_at=AT)


# Written out by hand from the CloudEvents NATS binding (binary mode, ``ce-`` prefixed
# attributes) and docs/sinks.md, not computed by the code under test.
COMMON = [
    "ce-specversion: 1.0",
    "ce-time: 2026-03-01T12:00:00.123456+00:00",
    "ce-datacontenttype: application/json",
]
EXPECTED_HEADERS = [
    (
        pinned(FULL, 1),
        [
            "Nats-Msg-Id: 00000000-0000-0000-0000-000000000001",
            "ce-id: 00000000-0000-0000-0000-000000000001",
            "ce-source: shop",
            "ce-type: OrderPlaced",
            "ce-topic: order",
            "ce-eventversion: 2",
            "ce-subject: order/o-1",
            "ce-aggregatetype: order",
            "ce-aggregateid: o-1",
            "ce-tenantid: acme",
            "ce-partitionkey: order:o-1",
            "ce-userid: u-1",
            "ce-correlationid: c-1",
            "ce-causationid: k-1",
            "ce-traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ],
    ),
    (
        pinned(BARE, 2),
        [
            "Nats-Msg-Id: 00000000-0000-0000-0000-000000000002",
            "ce-id: 00000000-0000-0000-0000-000000000002",
            "ce-source: tether",
            "ce-type: Ping",
            "ce-topic: Ping",
            "ce-eventversion: 1",
        ],
    ),
    (
        pinned(make_event("T", {}, aggregate_id="only-id"), 3),
        [
            "Nats-Msg-Id: 00000000-0000-0000-0000-000000000003",
            "ce-id: 00000000-0000-0000-0000-000000000003",
            "ce-source: tether",
            "ce-type: T",
            "ce-topic: T",
            "ce-eventversion: 1",
            "ce-subject: only-id",
            "ce-aggregateid: only-id",
            "ce-partitionkey: only-id",
        ],
    ),
]


@pytest.mark.parametrize(("event", "expected"), EXPECTED_HEADERS)
def test_header_block_carries_the_cloudevent_attributes(event: Event, expected: list[str]) -> None:
    assert header_lines(wire.header_block(event)) == sorted(COMMON + expected)
    assert header_lines(wire.reference_header_block(event)) == sorted(COMMON + expected)


def test_header_dict_matches_header_block() -> None:
    lines = header_lines(wire.header_block(FULL))
    assert sorted(f"{k}: {v}" for k, v in wire.header_dict(FULL).items()) == lines


def test_line_breaks_in_a_hand_built_event_cannot_inject_headers() -> None:
    evil = dataclasses.replace(BARE, source="a\r\nNats-Expected-Stream: X")
    lines = header_lines(wire.header_block(evil))
    assert not any(line.startswith("Nats-Expected-Stream") for line in lines)
    assert "ce-source: a%0D%0ANats-Expected-Stream: X" in lines


@pytest.mark.parametrize("value", ["Zoë", "100%", "a%41b", "日本", "tab\there", "plain"])
def test_header_values_round_trip_through_percent_encoding(value: str) -> None:
    event = dataclasses.replace(BARE, user_id=value)
    block = wire.header_block(event)
    assert block.isascii()
    [line] = [x for x in header_lines(block) if x.startswith("ce-userid: ")]
    assert wire.decode_value(line.removeprefix("ce-userid: ")) == value
    assert wire.header_dict(event)["ce-userid"] == line.removeprefix("ce-userid: ")


def test_hpub_frame_lengths() -> None:
    hdr = wire.header_block(BARE)
    frame = wire.hpub_frame("s.t", "_INBOX.x.1", hdr, b"{}")
    first, rest = frame.split(b"\r\n", 1)
    assert first == f"HPUB s.t _INBOX.x.1 {len(hdr)} {len(hdr) + 2}".encode()
    assert rest == hdr + b"{}\r\n"


def test_template_subject() -> None:
    subject = wire.template_subject("{prefix}.{tenant}.{topic}.v{version}", "app")
    assert subject(FULL) == "app.acme.order.v2"
    assert subject(FULL) == "app.acme.order.v2"  # cached
    with pytest.raises(wire.SubjectError, match="tenant"):
        subject(BARE)


@pytest.mark.parametrize("template", ["{prefix}.{nope}", "{}.x", "{0}"])
def test_template_with_unknown_fields_is_a_config_error(template: str) -> None:
    with pytest.raises(ConfigError):
        wire.template_subject(template, "app")


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a.", "a b", "a.*", "a.>", "x" * 2000])
def test_invalid_subjects(bad: str) -> None:
    with pytest.raises(wire.SubjectError):
        wire.check_subject(bad)


def test_topic_characters_make_valid_subjects() -> None:
    event = make_event("T", {}, topic="orders/eu:1-a")
    assert wire.template_subject("{prefix}.{topic}", "p")(event) == "p.orders/eu:1-a"


@pytest.mark.parametrize(
    ("data", "status", "ok", "retryable", "text"),
    [
        (b'{"stream":"S", "seq":1}', None, True, True, None),
        (b'{"stream":"S", "seq":1,"duplicate": true}', None, True, True, None),
        (
            b'{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},'
            b'"stream":"S","seq":0}',
            None,
            False,
            True,
            "maximum messages exceeded",
        ),
        (
            b'{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum'
            b' allowed"},"stream":"S","seq":0}',
            None,
            False,
            False,
            "message size",
        ),
        (b"", "503", False, True, "no JetStream stream listens"),
        (b"garbage", None, False, True, "unexpected"),
        (b'{"error": 1}', None, False, True, "unreadable"),
    ],
)
def test_parse_ack(
    data: bytes, status: str | None, ok: bool, retryable: bool, text: str | None
) -> None:
    ack = wire.parse_ack(data, status, "p.order")
    assert ack.ok is ok
    assert ack.duplicate is (b"duplicate" in data)
    assert ack.no_responders is (status == "503")  # the sink then asks which stream listens
    if not ok:
        assert ack.retryable is retryable
        assert text is not None
        assert ack.error is not None
        assert text in ack.error


def test_uuid_ids_are_canonical_text() -> None:
    event = dataclasses.replace(BARE, id=uuid.UUID(int=1))
    assert "Nats-Msg-Id: 00000000-0000-0000-0000-000000000001" in header_lines(
        wire.header_block(event)
    )
