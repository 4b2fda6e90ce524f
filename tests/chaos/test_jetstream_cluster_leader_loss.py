"""The stream leader of a three-node JetStream cluster is SIGKILLed while the relay drains.

A throwaway cluster (``tests/support/nats_cluster.py``, never the shared NATS) holds a stream
with three replicas and a duplicate window far beyond the relay's retry horizon. 3,000 events
over 50 keys are produced into a PostgreSQL outbox (most of them up front, the rest while the
relay runs); one relay, started once with the cluster's three URLs, drains them. Once it is
publishing, the node leading the stream is killed. The relay must carry on by itself: its
sink reconnects (when it was on the dead node) and its publishes reach the newly elected
leader. Afterwards the stream holds every event id exactly once, each key's events in
production order by stream sequence, and nothing is dead in the outbox. The killed node is
started again before the cluster is torn down.

The sink is connected either to the leader itself (the kill cuts its connection) or to a
follower (the connection stays, the acks of what was in flight never come).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import asyncpg
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from tests.support.nats_cluster import NatsCluster, add_stream, running_cluster
from tether.core.envelope import Event
from tether.core.errors import SinkUnavailableError
from tether.outbox import add_event
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.store_pg import PostgresOutboxStore
from tether.sinks.base import Outcome
from tether.sinks.jetstream import JetStreamSink

pytestmark = [pytest.mark.chaos, pytest.mark.nats, pytest.mark.slow, pytest.mark.timeout(300)]

EVENTS = 3_000
UP_FRONT = 2_000  # in the outbox before the relay starts; the rest arrive while it drains
KEYS = 50
PER_TX = 20
DUPLICATE_WINDOW = 600.0  # seconds; the relay's retry horizon below is well under a minute
ACK_TIMEOUT = 2.0


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    with running_cluster(size=3, ready_timeout=60) as nodes:
        yield nodes


@dataclass
class Call:
    started: float
    ended: float
    ok: int
    failed: int
    unavailable: bool


@dataclass
class WatchedSink:
    """Passes every call to the real sink and notes when it ran and how it ended, so the test
    can tell when publishing recovered after the kill."""

    sink: JetStreamSink
    name: str = "jetstream"
    calls: list[Call] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        started = time.monotonic()
        try:
            outcomes = await self.sink.publish(events)
        except SinkUnavailableError as exc:
            self.calls.append(Call(started, time.monotonic(), 0, len(events), True))
            self.errors[f"unavailable: {str(exc)[:70]}"] += 1
            raise
        ok = sum(1 for o in outcomes if o.ok)
        self.errors.update(f"failed: {o.error or ''}"[:80] for o in outcomes if not o.ok)
        self.calls.append(Call(started, time.monotonic(), ok, len(outcomes) - ok, False))
        return outcomes

    async def close(self) -> None:
        await self.sink.close()


async def produce(dsn: str, ids: list[str], counters: list[int], count: int) -> None:
    """``count`` events in transactions of 20, key ``n % KEYS``; each payload carries its
    position within its key."""
    conn = await asyncpg.connect(dsn)
    try:
        for start in range(len(ids), len(ids) + count, PER_TX):
            async with conn.transaction():
                for n in range(start, start + PER_TX):
                    key = n % KEYS
                    ref = await add_event(
                        conn, "Step", {"i": counters[key]}, aggregate_type="acct",
                        aggregate_id=str(key), topic="step",
                    )  # fmt: skip
                    counters[key] += 1
                    ids.append(str(ref.id))
            await asyncio.sleep(0.005)  # spread the late events over the chaos window
    finally:
        await conn.close()


async def wait_until(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def stream_leader(js: nats.js.JetStreamContext, stream: str, timeout: float) -> str:
    """The stream's current leader, asking until one is elected."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = await js.stream_info(stream)
            if info.cluster is not None and info.cluster.leader:
                return info.cluster.leader
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"stream {stream} has no leader after {timeout}s")
        await asyncio.sleep(0.2)


async def time_to_new_leader(
    js: nats.js.JetStreamContext, stream: str, old: str, since: float, timeout: float
) -> float:
    """Seconds from ``since`` until JetStream names a leader other than ``old``: the
    cluster's own recovery, to compare the relay's with."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        try:
            info = await js.stream_info(stream)
            if info.cluster is not None and info.cluster.leader not in (None, "", old):
                return time.monotonic() - since
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.Error):
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"stream {stream} elected no new leader within {timeout}s")


async def read_stream(
    js: nats.js.JetStreamContext, stream: str, prefix: str
) -> list[tuple[int, str, str, int]]:
    """(stream sequence, Nats-Msg-Id, key, position) of every message, read back."""
    total = (await js.stream_info(stream)).state.messages
    reader = await js.pull_subscribe(
        f"{prefix}.>", stream=stream, config=ConsumerConfig(ack_policy=AckPolicy.NONE)
    )
    out: list[tuple[int, str, str, int]] = []
    deadline = time.monotonic() + 60
    try:
        while len(out) < total:
            assert time.monotonic() < deadline, f"read {len(out)} of {total} messages in 60s"
            for msg in await reader.fetch(min(1000, total - len(out)), timeout=5):
                headers = msg.headers or {}
                position = json.loads(msg.data)["i"]
                out.append(
                    (msg.metadata.sequence.stream, headers["Nats-Msg-Id"],
                     headers["ce-aggregateid"], position)
                )  # fmt: skip
    finally:
        await reader.unsubscribe()
    return out


@pytest.mark.parametrize("client_on", ["leader", "follower"])
async def test_relay_follows_a_new_stream_leader_without_a_restart(
    pg_dsn: str, cluster: NatsCluster, client_on: str
) -> None:
    token = uuid.uuid4().hex[:10]
    stream, prefix = f"CLUSTER_{token}", f"cluster{token}"
    admin = await nats.connect(cluster.servers, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    # Setup and checks only: a cluster that has just elected its meta leader can take more
    # than 2 s to create a stream on a loaded machine (CI saw it time out).
    js = admin.jetstream(timeout=10.0)
    await add_stream(
        js,
        StreamConfig(
            name=stream, subjects=[f"{prefix}.>"], num_replicas=3,
            duplicate_window=DUPLICATE_WINDOW,
        ),
        cluster,
    )  # fmt: skip
    leader = await stream_leader(js, stream, timeout=30)
    # The sink tries the servers in this order: the first one is the node it lands on.
    first = cluster.node(leader) if client_on == "leader" else next(
        n for n in cluster.nodes if n.name != leader
    )  # fmt: skip
    servers = [first.url] + [n.url for n in cluster.nodes if n is not first]

    ids: list[str] = []
    counters = [0] * KEYS
    await produce(pg_dsn, ids, counters, UP_FRONT)
    sink = WatchedSink(
        await JetStreamSink.connect(
            servers, subject_prefix=prefix, ack_timeout=ACK_TIMEOUT,
            dont_randomize=True, reconnect_time_wait=0.2,
        )
    )  # fmt: skip
    store = await PostgresOutboxStore.connect(pg_dsn, connections=2)
    relay = Relay(store, [sink], config=RelayConfig(batch_size=100, concurrency=2))
    stop = asyncio.Event()
    runner = asyncio.create_task(relay.run(stop))
    producer = asyncio.create_task(produce(pg_dsn, ids, counters, EVENTS - UP_FRONT))
    conn = await asyncpg.connect(pg_dsn)
    killed_at = 0.0
    election: asyncio.Task[float] | None = None
    try:
        await wait_until(lambda: relay.stats.published >= 500, "the first 500 deliveries", 60)
        left = await conn.fetchval("SELECT count(*) FROM tether_outbox WHERE state = 'pending'")
        assert left > 0, "the outbox drained before the kill: nothing tests the failover"
        published_at_kill = relay.stats.published
        await asyncio.to_thread(cluster.kill, leader)
        killed_at = time.monotonic()
        election = asyncio.create_task(
            time_to_new_leader(admin.jetstream(timeout=0.5), stream, leader, killed_at, 60)
        )

        await producer
        async with asyncio.timeout(120):
            while await conn.fetchval("SELECT count(*) FROM tether_outbox WHERE state = 'pending'"):
                assert not runner.done(), f"the relay stopped: {runner}"
                await asyncio.sleep(0.1)
        drained_at = time.monotonic()
        elected_after = await election
        new_leader = await stream_leader(js, stream, timeout=30)
        dead = await conn.fetch(
            "SELECT id, attempts, last_error FROM tether_outbox WHERE state = 'dead' LIMIT 5"
        )
        attempts = await conn.fetchval("SELECT coalesce(max(attempts), 0) FROM tether_outbox")
        await asyncio.to_thread(cluster.restart, leader, 60)
    finally:
        stop.set()
        producer.cancel()
        if election is not None:
            election.cancel()
        await asyncio.wait_for(asyncio.gather(runner, producer, return_exceptions=True), 30)
        await sink.close()
        await store.close()
        await conn.close()

    after = [c for c in sink.calls if c.started >= killed_at]
    recovered = next(c for c in after if c.ok)
    print(
        f"client on {client_on} ({first.name}); killed {leader}, new leader {new_leader} "
        f"elected {elected_after:.2f}s after the kill; the relay published again "
        f"{recovered.ended - killed_at:.2f}s after the kill "
        f"(first publish after it ended {after[0].ended - killed_at:.2f}s), "
        f"drained {drained_at - killed_at:.2f}s after it; calls after the kill: "
        f"{sum(c.unavailable for c in after)} unavailable, "
        f"{sum(1 for c in after if c.failed and not c.unavailable)} with failed events; "
        f"relay stats {relay.stats}; max attempts {attempts}; published at kill {published_at_kill}; sink stats {sink.sink.stats}; "
        f"errors {dict(sink.errors)}"
    )
    assert new_leader != leader
    assert not dead, f"dead-lettered: {[dict(r) for r in dead]}"
    assert relay.stats.dead == 0
    # The election is a whole-sink outage: batches are deferred, attempts are kept. Only
    # events in flight at the kill (at most two batches) may have been charged one attempt.
    assert any(c.unavailable for c in after), "the relay never saw the sink unavailable"
    assert relay.stats.retried <= 2 * 100, f"attempts were spent on the election: {relay.stats}"
    assert relay.stats.published >= published_at_kill + 500, "little was published after the kill"

    messages = await read_stream(js, stream, prefix)
    await js.delete_stream(stream)
    await admin.close()
    stored = [msg_id for _, msg_id, _, _ in messages]
    assert len(ids) == EVENTS
    assert len(stored) == len(set(stored)) == EVENTS, "the stream holds a duplicate or misses one"
    assert set(stored) == set(ids)
    positions: dict[str, list[int]] = {}
    for _, _, key, position in sorted(messages):
        positions.setdefault(key, []).append(position)
    assert len(positions) == KEYS
    assert all(p == list(range(len(p))) for p in positions.values()), "per-key order broken"
