"""Pure rules of webhooks: filters, header and limit checks, the retry schedule, answers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tether.core import lifecycle
from tether.webhooks.model import EndpointSettings, WebhookConfigError, check_filters, matches
from tether.webhooks.schedule import DEFAULT_STEPS, FixedWait, RetrySchedule
from tether.webhooks.sender import SendPolicy, Verdict, retry_after, verdict_of

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_filters_match_exact_prefix_and_all() -> None:
    assert matches(("*",), "Anything")
    assert matches(("Order*",), "OrderPlaced") and not matches(("Order*",), "Ordr")
    assert matches(("orders.*",), "orders.shipped") and not matches(("orders.*",), "ordersX")
    assert matches(("Paid",), "Paid") and not matches(("Paid",), "Paid2")
    assert check_filters(["A", "A", "B*"]) == ("A", "B*")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"rate_limit": -1}, "rate_limit"),
        ({"rate_limit": float("nan")}, "rate_limit"),
        ({"priority": "urgent"}, "priority"),
        ({"description": "a\x00b"}, "control"),
        ({"url": ""}, "url"),
        ({"headers": {"bad name": "x"}}, "header name"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "twice"),
        ({"headers": {f"X-{i}": "v" for i in range(21)}}, "at most 20"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_settings_refuse_bad_input_naming_the_field(
    changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(WebhookConfigError, match=reason):
        EndpointSettings(**{"url": "https://example.com/", **changes})  # type: ignore[arg-type]


def test_the_default_schedule_is_svix_like_with_jitter() -> None:
    s = RetrySchedule()
    assert s.max_attempts == 8 and s.steps == DEFAULT_STEPS
    rng = random.Random(7)
    for attempt, step in enumerate(DEFAULT_STEPS[1:], start=1):
        wait = s.delay(attempt, rng)
        assert step * 0.9 <= wait <= step * 1.1
    exact = RetrySchedule.of([0, 5, 300], spread=0)
    moves = [
        lifecycle.decide(lifecycle.Outcome.RETRY, attempt=n, max_attempts=None, policy=exact,
                         now=NOW, error="HTTP 500")
        for n in (1, 2, 3)
    ]  # fmt: skip
    assert [(m.state.value, m.delay) for m in moves] == [
        ("pending", timedelta(seconds=5)), ("pending", timedelta(seconds=300)), ("dead", timedelta(0))
    ]  # fmt: skip
    fixed = FixedWait.after(exact, timedelta(seconds=42))
    assert fixed.delay(1) == timedelta(seconds=42) and fixed.max_attempts == 3
    with pytest.raises(Exception, match="negative"):
        RetrySchedule.of([0, -1])


def test_answers_and_retry_after() -> None:
    p = SendPolicy()
    assert [verdict_of(s, p) for s in (200, 204, 299)] == [Verdict.OK] * 3
    assert verdict_of(410, p) is Verdict.GONE
    assert [verdict_of(s, p) for s in (400, 401, 404, 422)] == [Verdict.PERMANENT] * 4
    assert [verdict_of(s, p) for s in (301, 408, 425, 429, 500, 503)] == [Verdict.RETRY] * 6
    assert verdict_of(400, SendPolicy(permanent_4xx=False)) is Verdict.RETRY
    assert retry_after("120", NOW) == 120.0
    assert retry_after("Sun, 01 Mar 2026 12:01:00 GMT", NOW) == 60.0
    assert retry_after("Sun, 01 Mar 2026 11:00:00 GMT", NOW) == 0.0
    assert retry_after("soon", NOW) is None and retry_after(None, NOW) is None
    assert retry_after("9" * 40, NOW) == 9_999_999_999.0  # bounded, then capped by the caller


def test_a_gate_admits_up_to_its_concurrency_and_rate_then_says_how_long_to_wait() -> None:
    import uuid

    from tether.webhooks.gates import Gates
    from tether.webhooks.model import Endpoint
    from tether.webhooks.signing import SecretRing, WebhookSecret

    def endpoint(**settings: object) -> Endpoint:
        s = EndpointSettings("https://example.com/", **settings)  # type: ignore[arg-type]
        return Endpoint(uuid.UUID(int=1), None, s, SecretRing(WebhookSecret.generate()), None,
                        None, NOW, NOW)  # fmt: skip

    gates = Gates(lambda _id: None)
    gate = gates.for_endpoint(endpoint(concurrency=2))
    assert [gate.admit(), gate.admit()] == [0.0, 0.0]
    assert gate.admit() > 0  # a third would exceed the concurrency: defer
    gate.release(0.2)
    assert gate.admit() == 0.0
    limited = gates.for_endpoint(endpoint(concurrency=100, rate_limit=2.0))
    assert limited is gate  # one gate per endpoint, reconfigured from its settings
    gate.in_flight = 0
    assert [gate.admit(), gate.admit()] == [0.0, 0.0]  # the burst
    assert 0 < gate.admit() <= 0.5  # then one request per 0.5 s
