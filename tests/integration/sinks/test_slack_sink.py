"""The Slack sink against a fake Slack on loopback that checks every message's shape (Block
Kit limits, escaping) and the pace: at most one message per second per webhook URL."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.support.http_receiver import Answer, Received, Receiver, receiving
from tether.core.envelope import Event, make_event
from tether.core.errors import SinkUnavailableError
from tether.net import SsrfPolicy
from tether.sinks import slack
from tether.sinks.slack import SlackSink

LOOPBACK = SsrfPolicy(allow=["127.0.0.1"])


def slack_shape_problems(request: Received) -> list[str]:
    """What Slack would refuse in a message (checked by the fake Slack)."""
    problems = []
    if request.headers.get("content-type") != "application/json":
        problems.append("content-type")
    body = orjson.loads(request.body)
    if not body.get("text"):
        problems.append("no fallback text")
    blocks = body.get("blocks", [])
    if not 1 <= len(blocks) <= 50:
        problems.append("blocks count")
    for block in blocks:
        if block["type"] == "header" and (
            block["text"]["type"] != "plain_text" or len(block["text"]["text"]) > 150
        ):
            problems.append("header")
        if block["type"] == "section":
            if "text" in block and len(block["text"]["text"]) > 3000:
                problems.append("section text over 3000")
            if len(block.get("fields", [])) > 10 or any(
                len(f["text"]) > 2000 for f in block.get("fields", [])
            ):
                problems.append("fields")
    if any(c in request.body.decode() for c in "<>"):
        problems.append("unescaped < or >")
    return problems


def fake_slack(request: Received) -> Answer:
    problems = slack_shape_problems(request)
    return Answer(400, body=b"invalid_blocks") if problems else Answer(200, body=b"ok")


def events(n: int) -> list[Event]:
    return [
        make_event("Note", {"i": i, "html": "<i>&</i>", "pad": "y" * 4000}, tenant_id="acme")
        for i in range(n)
    ]


@pytest.fixture(autouse=True)
def fresh_pacers() -> None:
    slack._PACERS.clear()


async def connect(receiver: Receiver, **options: object) -> SlackSink:
    return await SlackSink.connect(
        f"{receiver.url}/services/T0/B0/secret",
        policy=LOOPBACK,
        **options,  # type: ignore[arg-type]
    )


async def test_messages_have_slacks_shape_and_one_per_second() -> None:
    async with receiving(fake_slack) as receiver:
        sink = await connect(receiver, max_wait=5.0)
        batch = events(2)
        outcomes = await sink.publish(batch)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        assert receiver.rejected == []
        gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:])]
        assert all(gap >= 0.95 for gap in gaps), gaps  # load only makes gaps longer
        await sink.close()


async def test_a_batch_past_max_wait_is_deferred_and_nothing_is_sent_twice() -> None:
    async with receiving(fake_slack) as receiver:
        sink = await connect(receiver, max_wait=0.0)
        batch = events(2)
        sent, paced = await sink.publish(batch)
        assert sent.ok and len(receiver.requests) == 1  # the free slot was used; the rest wait
        assert paced.defer_s is not None and 0 < paced.defer_s <= 1.0
        assert "paced" in (paced.error or "")
        await asyncio.sleep(paced.defer_s)  # what the relay does: wait, offer it again
        [outcome] = await sink.publish(batch[1:])
        assert outcome.ok
        sent_ids = [
            orjson.loads(r.body)["blocks"][-1]["elements"][0]["text"] for r in receiver.requests
        ]
        assert len(sent_ids) == 2 and len(set(sent_ids)) == 2  # every event once, none dropped
        await sink.close()


async def test_two_sinks_of_one_webhook_share_its_pace() -> None:
    async with receiving(fake_slack) as receiver:
        first, second = await connect(receiver, max_wait=0.0), await connect(receiver, max_wait=0.0)
        assert (await first.publish(events(1)))[0].ok
        [paced] = await second.publish(events(1))
        assert paced.defer_s is not None and "paced" in (paced.error or "")
        await first.close()
        await second.close()


async def test_429_blocks_the_webhook_for_retry_after() -> None:
    async with receiving(lambda r: Answer(429, {"retry-after": "30"}, b"rate_limited")) as receiver:
        sink = await connect(receiver, max_wait=5.0)
        limited, held = await sink.publish(events(2))
        assert limited.defer_s == 30.0 and "Retry-After 30s" in (limited.error or "")
        assert held.defer_s is not None and held.defer_s > 25  # not sent: the pacer is blocked
        assert sink.pacer.free_in() > 25
        [paced] = await sink.publish(events(1))  # no request while blocked
        assert paced.defer_s is not None and "paced" in (paced.error or "")
        assert len(receiver.rejected) == 1
        await sink.close()


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (404, False), (410, False), (500, True)]
)
async def test_slack_errors_map_to_outcomes(status: int, retryable: bool) -> None:
    async with receiving(lambda r: Answer(status, body=b"no_service")) as receiver:
        sink = await connect(receiver)
        [outcome] = await sink.publish(events(1))
        assert not outcome.ok and outcome.retryable is retryable
        assert "no_service" in (outcome.error or "") and "secret" not in (outcome.error or "")
        await sink.close()


async def test_slack_down_raises_unavailable() -> None:
    async with receiving(fake_slack) as receiver:
        sink = await connect(receiver)
    with pytest.raises(SinkUnavailableError, match=r"cannot reach http://127\.0\.0\.1"):
        await sink.publish(events(1))
    await sink.close()
