"""Redelivery policy, backoff parsing and decoding a delivery back into an event."""

from __future__ import annotations

import random

import pytest

from tether.consume import RedeliveryPolicy, UndecodableError, event_from, parse_backoff
from tether.consume.deadletter import REASON_MAX, clip_reason
from tether.core.envelope import make_event
from tether.core.errors import ConfigError


def test_default_policy_reads_as_brokers_configure_it() -> None:
    policy = RedeliveryPolicy(jitter=0)
    assert [policy.delay(n) for n in range(1, 5)] == [10, 30, 60, 120]
    assert not policy.exhausted(4)
    assert policy.exhausted(5)


def test_the_last_delay_repeats_and_jitter_stays_within_its_spread() -> None:
    policy = RedeliveryPolicy(backoff=(1, 5), max_deliveries=10, jitter=0.2)
    rng = random.Random(7)
    delays = [policy.delay(9, rng) for _ in range(200)]
    assert all(4.0 <= d <= 6.0 for d in delays)
    assert max(delays) - min(delays) > 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_deliveries": 0}, "max_deliveries must be at least 1"),
        ({"backoff": ()}, "at least one delay"),
        ({"backoff": (-1,)}, "backoff delay -1"),
        ({"backoff": (float("nan"),)}, "backoff delay nan"),
        ({"jitter": 1.0}, "jitter"),
    ],
)
def test_a_bad_policy_names_the_setting(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RedeliveryPolicy(**kwargs)  # type: ignore[arg-type]


def test_backoff_text_takes_units() -> None:
    assert parse_backoff("10, 30s,5m,1h,250ms") == (10, 30, 300, 3600, 0.25)
    with pytest.raises(ConfigError, match="'soon' is not a duration"):
        parse_backoff("10,soon")
    with pytest.raises(ConfigError, match="empty item"):
        parse_backoff("10,,30")


def test_an_event_survives_the_round_trip_through_its_attributes() -> None:
    event = make_event(
        "OrderPlaced",
        {"total": 12.5, "name": "Zoë"},
        aggregate_type="order",
        aggregate_id="o-1",
        tenant_id="acme",
        user_id="u-7",
        correlation_id="c-1",
        causation_id="c-0",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        version=3,
    )
    back = event_from(event.cloudevent_attributes(), event.data)
    assert back == event


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": None}, "no CloudEvents 'id'"),
        ({"type": None}, "no CloudEvents 'type'"),
        ({"id": "42"}, "not a UUID"),
        ({"eventversion": "x"}, "eventversion 'x'"),
        ({"time": "yesterday"}, "not an ISO 8601"),
        ({"time": "2026-12-01T10:00:00"}, "no time zone"),
        ({"tenantid": "a b; DROP TABLE"}, "tenant_id"),
        ({"type": "x" * 300}, "type"),
    ],
)
def test_a_bad_attribute_is_named(change: dict[str, str | None], message: str) -> None:
    attrs = make_event("T", {}).cloudevent_attributes()
    for key, value in change.items():
        if value is None:
            attrs.pop(key)
        else:
            attrs[key] = value
    with pytest.raises(UndecodableError, match=message):
        event_from(attrs, b"{}")


def test_a_body_that_is_not_json_is_undecodable() -> None:
    attrs = make_event("T", {}).cloudevent_attributes()
    with pytest.raises(UndecodableError, match="payload is not JSON"):
        event_from(attrs, b"\x00\xff")


def test_a_reason_is_one_bounded_printable_line() -> None:
    assert clip_reason("boom\n  at line 3\x1b[31m") == "boom at line 3?[31m"
    assert len(clip_reason("x" * 5000)) == REASON_MAX
