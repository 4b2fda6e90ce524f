"""The generic HTTP sink against a real receiver on loopback: what each answer does to an
event, Retry-After, signatures checked with the ``standardwebhooks`` package, the request
parsed with the official CloudEvents SDK, and the SSRF guard."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from standardwebhooks.webhooks import Webhook

from tests.support.http_receiver import Answer, Received, Receiver, receiving
from tether.core.envelope import make_event
from tether.core.errors import ConfigError, SinkUnavailableError
from tether.net import SsrfPolicy
from tether.sinks.http import HttpSink
from tether.webhooks.signing import WebhookSecret

LOOPBACK = SsrfPolicy(allow=["127.0.0.1"])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as r:
        yield r


async def sink_for(receiver: Receiver, **options: object) -> HttpSink:
    return await HttpSink.connect(f"{receiver.url}/webhook/abc", policy=LOOPBACK, **options)  # type: ignore[arg-type]


def order(i: int = 0, **kw: object):  # type: ignore[no-untyped-def]
    return make_event(
        "OrderPlaced",
        {"n": i},
        aggregate_type="order",
        aggregate_id=f"o-{i}",
        tenant_id="acme",
        **kw,  # type: ignore[arg-type]
    )


async def test_cloudevents_sdk_reads_back_what_was_produced(receiver: Receiver) -> None:
    sink = await sink_for(receiver)
    created = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)
    event = order(7, source="shop/eu", created_at=created)
    assert (await sink.publish([event]))[0].ok
    [request] = receiver.requests
    parsed = from_http_event(HTTPMessage(request.headers, request.body))
    assert parsed.get_id() == str(event.id)
    assert parsed.get_type() == "OrderPlaced"
    assert parsed.get_source() == "shop/eu"
    assert parsed.get_subject() == "order/o-7"
    assert parsed.get_time() == created
    assert parsed.get_data() == {"n": 7}
    assert parsed.get_extension("tenantid") == "acme"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-event-type"] == "OrderPlaced"
    assert request.headers["x-idempotency-key"] == str(event.id)
    assert request.body == event.data  # the payload's bytes, untouched
    await sink.close()


async def test_signed_requests_verify_with_the_standardwebhooks_package(receiver: Receiver) -> None:
    old, new = WebhookSecret.generate(), WebhookSecret.generate()
    sink = await sink_for(receiver, secrets=[new, old], headers={"X-N8N-Auth": "token-1"})
    events = [order(i) for i in range(3)]
    assert all(o.ok for o in await sink.publish(events))
    for request, secret in ((r, s) for r in receiver.requests for s in (old, new)):
        payload = Webhook(str(secret)).verify(request.body, request.headers)
        assert request.headers["webhook-id"] == request.headers["x-idempotency-key"]
        assert payload["n"] in (0, 1, 2)
        assert request.headers["x-n8n-auth"] == "token-1"
    forged = dict(receiver.requests[0].headers)
    forged["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(str(new)).verify(receiver.requests[0].body, forged)
    await sink.close()


ANSWERS = [
    (500, True),
    (502, True),
    (503, True),
    (408, True),
    (429, True),
    (400, False),
    (404, False),
    (410, False),
    (302, False),
]


async def test_each_answer_maps_to_an_outcome() -> None:
    def respond(request: Received) -> Answer:
        status = int(request.path.rsplit("/", 1)[1])
        headers = {"location": "http://169.254.169.254/"} if status == 302 else {}
        return Answer(status, headers, b"workflow failed: <details>")

    async with receiving(respond) as receiver:
        for status, retryable in ANSWERS:
            sink = await HttpSink.connect(f"{receiver.url}/webhook/{status}", policy=LOOPBACK)
            [outcome] = await sink.publish([order()])
            assert not outcome.ok, status
            assert outcome.retryable is retryable, status
            assert f"HTTP {status}" in (outcome.error or "")
            assert "/webhook" not in (outcome.error or "")  # the URL's path may be a secret
            await sink.close()
        # One request each: a redirect is never followed.
        assert len(receiver.rejected) == len(ANSWERS)


async def test_one_refused_event_leaves_the_others_delivered() -> None:
    def respond(request: Received) -> Answer:
        return Answer(422) if orjson.loads(request.body)["n"] == 2 else Answer()

    async with receiving(respond) as receiver:
        sink = await sink_for(receiver)
        outcomes = await sink.publish([order(i) for i in range(5)])
        assert [o.ok for o in outcomes] == [True, True, False, True, True]
        assert outcomes[2].retryable is False
        await sink.close()


async def test_retry_after_defers_the_unsent_events_and_holds_requests_back() -> None:
    limited = {"on": True}

    def respond(request: Received) -> Answer:
        if limited["on"] and orjson.loads(request.body)["n"] == 1:
            return Answer(429, {"retry-after": "1"})
        return Answer()

    async with receiving(respond) as receiver:
        sink = await sink_for(receiver, max_in_flight=1)
        batch = [order(i) for i in range(3)]
        first = await sink.publish(batch)
        assert first[0].ok  # event 0 went through before the 429
        assert first[1].defer_s == 1.0 and "Retry-After 1s" in (first[1].error or "")
        assert first[2].defer_s is not None  # held back, not sent
        taken = len(receiver.requests)
        rest = [e for e, o in zip(batch, first, strict=True) if not o.ok]
        again = await sink.publish(rest)  # no request before the time is up
        assert all(o.defer_s is not None and "asked to wait" in (o.error or "") for o in again)
        assert len(receiver.requests) == taken and len(receiver.rejected) == 1
        limited["on"] = False
        await asyncio.sleep(max(o.defer_s or 0 for o in again))  # the relay waits this long
        assert all(o.ok for o in await sink.publish(rest))
        ids = [r.headers["ce-id"] for r in receiver.requests]
        assert sorted(ids) == sorted(str(e.id) for e in batch)  # event 0 not sent twice
        await sink.close()


async def test_target_down_raises_unavailable() -> None:
    async with receiving() as receiver:
        sink = await sink_for(receiver)
    with pytest.raises(SinkUnavailableError, match=r"cannot reach http://127\.0\.0\.1"):
        await sink.publish([order(1), order(2)])
    await sink.close()


async def test_oversized_payload_is_refused_before_sending(receiver: Receiver) -> None:
    sink = await sink_for(receiver, max_body_bytes=64)
    big = make_event("OrderPlaced", {"pad": "x" * 100}, topic="order")
    [outcome] = await sink.publish([big])
    assert not outcome.ok and outcome.retryable is False
    assert receiver.requests == []
    await sink.close()


async def test_ssrf_guard_refuses_loopback_unless_allowed(receiver: Receiver) -> None:
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1"):
        await HttpSink.connect(f"{receiver.url}/hook")
    with pytest.raises(ConfigError):
        await HttpSink.connect("http://169.254.169.254/latest/meta-data")


async def test_settings_open_a_working_sink(receiver: Receiver) -> None:
    from tether.sinks.http import PLUGIN, HttpSettings

    secret = WebhookSecret.generate()
    settings = HttpSettings(
        url=f"{receiver.url}/hook",
        allow=("127.0.0.1",),
        secrets=(str(secret),),  # type: ignore[arg-type]
    )
    sink = await PLUGIN.open_sink(settings)
    event = order(3)
    assert (await sink.publish([event]))[0].ok
    Webhook(str(secret)).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert uuid.UUID(receiver.requests[0].headers["webhook-id"]) == event.id
    await sink.close()
