"""The JetStream sink given several servers, and a stream that has lost its leader.

A list of URLs (``connect(servers=[...])``, or ``[sinks.nats] url`` with commas) is handed to
nats-py as the server pool: a dead entry in it does not stop the sink.

A stream that exists but has no leader makes the sink unavailable, not failing.

A cluster node that leads a stream and goes away leaves its subject without a listener until
a new leader is elected: JetStream answers each publish with a bare 503 ("no responders"),
exactly as it does for a subject no stream listens on. The sink asks which it is: a missing
stream still fails each event (retryable, naming the event's subject), a leaderless one
raises SinkUnavailableError so the relay waits without spending attempts.

The cluster is a private one on free loopback ports (``tests/support/nats_cluster.py``);
the node killed here is one of its own processes, never the shared NATS.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import nats
import pytest
from nats.js.api import StreamConfig

from tests.support.nats_cluster import NatsCluster, add_stream, free_ports, running_cluster
from tether.core.envelope import Event, make_event
from tether.core.errors import SinkUnavailableError
from tether.sinks.builtin import NATS, NatsSettings
from tether.sinks.jetstream import JetStreamSink

pytestmark = [pytest.mark.nats, pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    with running_cluster(size=3, ready_timeout=60) as nodes:
        yield nodes


def evs(n: int, topic: str) -> list[Event]:
    return [make_event("Tick", {"n": i}, topic=topic) for i in range(n)]


async def test_a_url_list_from_the_settings_skips_a_dead_server(nats_url: str) -> None:
    token = uuid.uuid4().hex[:10]
    [dead] = free_ports(1)  # nothing listens there
    settings = NatsSettings(
        url=f"nats://127.0.0.1:{dead}, {nats_url}", stream=f"URLS_{token}",
        subject_prefix=f"urls{token}",
    )  # fmt: skip
    assert settings.servers() == [f"nats://127.0.0.1:{dead}", nats_url]
    sink = await NATS.open_sink(settings)
    try:
        assert all(o.ok for o in await sink.publish(evs(3, "tick")))
    finally:
        await sink.close()
        nc = await nats.connect(nats_url)
        await nc.jetstream().delete_stream(f"URLS_{token}")
        await nc.close()


@pytest.mark.parametrize(
    ("raw_frames", "fast_acks"), [(True, True), (False, False)], ids=["fast", "public"]
)
async def test_leaderless_stream_is_unavailable_and_missing_stream_fails_each_event(
    cluster: NatsCluster, raw_frames: bool, fast_acks: bool
) -> None:
    token = uuid.uuid4().hex[:10]
    stream, prefix = f"LEADERLESS_{token}", f"leaderless{token}"
    admin = await nats.connect(cluster.servers, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    # Setup and checks only: a cluster that has just elected its meta leader can take more
    # than 2 s to create a stream on a loaded machine (CI saw it time out).
    js = admin.jetstream(timeout=10.0)
    # One replica, placed on n3: killing n3 leaves the stream without any leader while the
    # other two nodes keep the meta group (and so the stream's definition) answering.
    await add_stream(
        js, StreamConfig(name=stream, subjects=[f"{prefix}.>"], num_replicas=1), cluster
    )
    info = await js.stream_info(stream)
    assert info.cluster is not None
    holder = info.cluster.leader
    others = [n.url for n in cluster.nodes if n.name != holder]
    sink = await JetStreamSink.connect(
        others, subject_prefix=prefix, ack_timeout=2.0, raw_frames=raw_frames,
        fast_acks=fast_acks,
    )  # fmt: skip
    try:
        assert all(o.ok for o in await sink.publish(evs(5, "tick")))
        cluster.kill(str(holder))
        # If n3 led the meta group too, wait for the next meta leader: this test is about the
        # answer JetStream gives, not about it being unable to answer for a moment.
        await asyncio.to_thread(cluster.wait_ready, 30)

        started = time.monotonic()
        with pytest.raises(SinkUnavailableError, match="leader is being elected"):
            await sink.publish(evs(5, "tick"))
        assert time.monotonic() - started < 5, "the 503s should be answered, not waited out"

        missing = await JetStreamSink.connect(
            others, subject_prefix=f"nostream{token}", ack_timeout=2.0, raw_frames=raw_frames,
            fast_acks=fast_acks,
        )  # fmt: skip
        try:
            outcomes = await missing.publish(evs(3, "tick"))
        finally:
            await missing.close()
        assert all(not o.ok and o.retryable for o in outcomes)
        assert all(f"'nostream{token}.tick'" in (o.error or "") for o in outcomes), outcomes

        await asyncio.to_thread(cluster.restart, str(holder), 60)
        deadline = time.monotonic() + 30
        while True:  # the stream's only replica is back: publishing works again
            try:
                if all(o.ok for o in await sink.publish(evs(5, "tick"))):
                    break
            except SinkUnavailableError:
                pass
            assert time.monotonic() < deadline, "the stream did not come back within 30s"
            await asyncio.sleep(0.2)
        assert (await js.stream_info(stream)).state.messages == 10
    finally:
        await sink.close()
        await js.delete_stream(stream)
        await admin.close()
