"""JetStream sink against the real server: the outcomes the contract suite does not reach."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StreamConfig

from tests.integration.sinks.tcp_proxy import TcpProxy
from tether.core.envelope import Event, make_event
from tether.core.errors import ConfigError, SinkUnavailableError
from tether.sinks.jetstream import JetStreamSink

pytestmark = pytest.mark.nats


@dataclass
class Stream:
    name: str
    prefix: str
    js: JetStreamContext
    nc: NATS

    async def count(self) -> int:
        return (await self.js.stream_info(self.name)).state.messages


@pytest.fixture
async def stream(nats_url: str) -> AsyncIterator[Stream]:
    token = uuid.uuid4().hex[:12]
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    s = Stream(f"SINKIT_{token}", f"sinkit{token}", js, nc)
    await js.add_stream(
        StreamConfig(
            name=s.name, subjects=[f"{s.prefix}.>"], max_msgs=50, discard=DiscardPolicy.NEW
        )
    )
    try:
        yield s
    finally:
        await js.delete_stream(s.name)
        await nc.close()


def evs(n: int, **kw: Any) -> list[Event]:
    return [
        make_event("OrderPlaced", {"n": i}, aggregate_type="order", aggregate_id=i, **kw)
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("raw_frames", "fast_acks"),
    [(True, True), (True, False), (False, True), (False, False)],
    ids=["raw-hooked", "raw-subscription", "public-hooked", "public-subscription"],
)
async def test_every_write_and_ack_path_publishes_and_dedups(
    nats_url: str, stream: Stream, raw_frames: bool, fast_acks: bool
) -> None:
    sink = await JetStreamSink.connect(
        nats_url, subject_prefix=stream.prefix, raw_frames=raw_frames, fast_acks=fast_acks
    )
    try:
        batch = evs(10, tenant_id="acme")
        assert all(o.ok for o in await sink.publish(batch))
        assert all(o.ok for o in await sink.publish(batch))
        assert await stream.count() == 10
        assert sink.stats["duplicates"] == 10
        msg = await stream.js.get_msg(stream.name, 1)
        assert msg.subject == f"{stream.prefix}.order"
        assert msg.headers is not None
        assert msg.headers["Nats-Msg-Id"] == str(batch[0].id)
        assert msg.headers["ce-tenantid"] == "acme"
    finally:
        await sink.close()


@pytest.mark.parametrize("fast_acks", [True, False], ids=["hooked", "subscription"])
async def test_stream_limit_refusal_is_retryable(
    nats_url: str, stream: Stream, fast_acks: bool
) -> None:
    sink = await JetStreamSink.connect(nats_url, subject_prefix=stream.prefix, fast_acks=fast_acks)
    try:
        outcomes = await sink.publish(evs(60))
        assert [o.ok for o in outcomes] == [True] * 50 + [False] * 10
        assert all(o.retryable and o.error and "maximum messages" in o.error for o in outcomes[50:])
    finally:
        await sink.close()


async def test_no_stream_for_subject_fails_each_event(nats_url: str) -> None:
    sink = await JetStreamSink.connect(nats_url, subject_prefix=f"nostream{uuid.uuid4().hex}")
    try:
        outcomes = await sink.publish(evs(3))
        assert all(not o.ok and o.retryable for o in outcomes)
        assert outcomes[0].error is not None
        assert "no JetStream stream listens" in outcomes[0].error
    finally:
        await sink.close()


async def test_event_over_max_payload_fails_alone_and_connection_survives(
    nats_url: str, stream: Stream
) -> None:
    sink = await JetStreamSink.connect(nats_url, subject_prefix=stream.prefix)
    try:
        big = make_event("Blob", {"x": "y" * 1_100_000}, topic="blob", max_payload_bytes=2**21)
        outcomes = await sink.publish([evs(1)[0], big, evs(1)[0]])
        assert [o.ok for o in outcomes] == [True, False, True]
        assert outcomes[1].retryable is False
        assert all(o.ok for o in await sink.publish(evs(2)))
    finally:
        await sink.close()


async def test_invalid_subject_fails_the_event_not_the_batch(nats_url: str, stream: Stream) -> None:
    sink = await JetStreamSink.connect(
        nats_url, subject=lambda e: f"{stream.prefix}.{e.type}" + (" bad" if e.type == "X" else "")
    )
    try:
        outcomes = await sink.publish([make_event("A", {}), make_event("X", {})])
        assert [o.ok for o in outcomes] == [True, False]
        assert outcomes[1].retryable is False
    finally:
        await sink.close()


async def test_a_batch_without_a_single_ack_is_an_outage_not_five_failures(
    nats_url: str, stream: Stream
) -> None:
    """A connected server that acknowledges nothing is hung: the events keep their attempts."""
    proxy = TcpProxy("127.0.0.1", 4222)
    await proxy.start()
    sink = await JetStreamSink.connect(proxy.url, subject_prefix=stream.prefix, ack_timeout=0.3)
    try:
        proxy.swallow_replies = True
        with pytest.raises(SinkUnavailableError, match="acknowledged none of 5 event"):
            await sink.publish(evs(5))
        proxy.swallow_replies = False
        assert all(o.ok for o in await sink.publish(evs(2)))
    finally:
        await sink.close()
        await proxy.cut()


async def test_recovers_after_the_connection_comes_back(nats_url: str, stream: Stream) -> None:
    proxy = TcpProxy("127.0.0.1", 4222)
    await proxy.start()
    back = asyncio.Event()

    async def reconnected() -> None:
        back.set()

    sink = await JetStreamSink.connect(
        proxy.url,
        subject_prefix=stream.prefix,
        reconnect_time_wait=0.1,
        reconnected_cb=reconnected,
    )
    try:
        assert all(o.ok for o in await sink.publish(evs(3)))
        await proxy.cut()
        with pytest.raises(SinkUnavailableError):
            await sink.publish(evs(3))
        await proxy.start()
        await asyncio.wait_for(back.wait(), 10)
        assert all(o.ok for o in await sink.publish(evs(3)))
        assert await stream.count() == 6
    finally:
        await sink.close()
        await proxy.cut()


async def test_concurrent_publishes_share_one_inbox(nats_url: str, stream: Stream) -> None:
    sink = await JetStreamSink.connect(nats_url, subject_prefix=stream.prefix)
    try:
        results = await asyncio.gather(*(sink.publish(evs(10)) for _ in range(4)))
        assert all(o.ok for outcomes in results for o in outcomes)
        assert await stream.count() == 40
    finally:
        await sink.close()


async def test_connect_to_nothing_is_unavailable() -> None:
    with pytest.raises(SinkUnavailableError):
        await JetStreamSink.connect("nats://127.0.0.1:1", connect_timeout=0.5)


async def test_ensure_stream(nats_url: str, stream: Stream) -> None:
    name = f"ENSURE_{uuid.uuid4().hex[:12]}"
    sink = await JetStreamSink.connect(
        nats_url, subject_prefix=name.lower(), stream=name, duplicate_window=30
    )
    try:
        info = await stream.js.stream_info(name)
        assert info.config.subjects == [f"{name.lower()}.>"]
        assert info.config.duplicate_window == 30
        await sink.ensure_stream(name, [f"{name.lower()}.>"])  # idempotent
        with pytest.raises(ConfigError):
            await sink.ensure_stream(stream.name, ["elsewhere.>"])
    finally:
        await sink.close()
        await stream.js.delete_stream(name)


def test_bad_subject_template_is_refused_at_once() -> None:
    with pytest.raises(ConfigError):
        JetStreamSink(NATS(), subject="{prefix}.{nope}")
    with pytest.raises(ConfigError):
        JetStreamSink(NATS(), subject_prefix="bad prefix")
    with pytest.raises(ConfigError):
        JetStreamSink(NATS(), ack_timeout=0)


async def test_docs_example(nats_url: str) -> None:
    from tests.unit.sinks.test_docs_examples import doc_block

    token = uuid.uuid4().hex[:12]
    unique = {'"SHOP"': f'"DOCS_{token}"', '"shop"': f'"docs{token}"'}
    deliver = doc_block("JetStreamSink.connect", unique)["deliver"]
    try:
        [outcome] = await deliver([make_event("A", {}, topic="order")], nats_url)
        assert outcome.ok
    finally:
        nc = await nats.connect(nats_url)
        await nc.jetstream().delete_stream(f"DOCS_{token}")
        await nc.close()


@pytest.mark.parametrize("fast_acks", [True, False], ids=["hooked", "subscription"])
async def test_ack_hook_takes_the_acks_only_when_asked(
    nats_url: str, stream: Stream, fast_acks: bool
) -> None:
    sink = await JetStreamSink.connect(nats_url, subject_prefix=stream.prefix, fast_acks=fast_acks)
    try:
        assert sink._sub is not None
        through_subscription = 0
        original = sink._on_ack

        async def counting(msg: Msg) -> None:
            nonlocal through_subscription
            through_subscription += 1
            await original(msg)

        sink._sub._cb = counting
        assert all(o.ok for o in await sink.publish(evs(20)))
        assert (through_subscription == 0) is fast_acks
    finally:
        await sink.close()


async def test_connect_closes_its_connection_when_the_stream_is_wrong(
    nats_url: str, stream: Stream
) -> None:
    with pytest.raises(ConfigError):
        await JetStreamSink.connect(nats_url, subject_prefix="elsewhere", stream=stream.name)
