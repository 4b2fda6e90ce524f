"""Broker hand-off to NATS JetStream: every job is stored once with its id as Nats-Msg-Id (a
re-publish is dropped), NATS down defers without spending attempts, and a message the server
refuses dead-letters its job."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import nats
import orjson
import pytest
from nats.js.api import StreamConfig
from typer.testing import CliRunner

from tests.integration.sinks.tcp_proxy import TcpProxy
from tether.cli import app
from tether.core.errors import SinkUnavailableError
from tether.jobs import JobRegistry, Jobs, JobStore
from tether.jobs.handoff import HandoffRunner, job_event
from tether.queue import Claimed
from tether.sinks.jetstream import JetStreamSink

pytestmark = pytest.mark.nats


@pytest.fixture
async def stream(nats_url: str) -> AsyncIterator[tuple[str, str]]:
    token = uuid.uuid4().hex[:12]
    name, prefix = f"HANDOFF_{token}", f"handoff{token}"
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{prefix}.>"], duplicate_window=60))
    try:
        yield name, prefix
    finally:
        await js.delete_stream(name)
        await nc.close()


def define(reg: JobRegistry) -> None:
    @reg.job(name="index", queue="to-nats", handoff=True)
    async def index(doc: int, text: str = "") -> None:
        raise AssertionError("a hand-off queue's jobs never run here")


async def stored(nats_url: str, name: str) -> list[tuple[str, dict[str, object]]]:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        count = (await js.stream_info(name)).state.messages
        found = []
        for seq in range(1, count + 1):
            msg = await js.get_msg(name, seq)
            assert msg.headers is not None and msg.data is not None
            found.append((msg.headers["Nats-Msg-Id"], orjson.loads(msg.data)))
        return found
    finally:
        await nc.close()


async def test_every_job_is_stored_once_with_its_id(
    jobs: Jobs, reg: JobRegistry, nats_url: str, stream: tuple[str, str]
) -> None:
    define(reg)
    name, prefix = stream
    sink = await JetStreamSink.connect(nats_url, subject_prefix=prefix)
    try:
        refs = [await jobs.enqueue("index", {"doc": n}) for n in range(5)]
        runner = HandoffRunner(jobs, sink, queues=["to-nats"])
        assert await runner.run_once() == 5
        now = datetime.now(UTC)  # published again (a lease ran out mid-publish): dropped
        repeats = [job_event(Claimed(i, uuid.uuid4(), now)) for i in await jobs.store.engine.list()]
        assert all(o.ok for o in await sink.publish(repeats[:1]))
        found = await stored(nats_url, name)
        assert sorted(i for i, _ in found) == sorted(str(r.id) for r in refs)
        assert sorted(d["doc"] for _, d in found) == list(range(5))  # type: ignore[type-var]
        assert runner.stats.published == 5
    finally:
        await sink.close()


async def test_nats_down_defers_without_spending_attempts(
    jobs: Jobs, reg: JobRegistry, stream: tuple[str, str]
) -> None:
    define(reg)
    proxy = TcpProxy("127.0.0.1", 4222)
    await proxy.start()
    sink = await JetStreamSink.connect(proxy.url, subject_prefix=stream[1])
    try:
        ref = await jobs.enqueue("index", {"doc": 1})
        await proxy.cut()
        runner = HandoffRunner(jobs, sink, queues=["to-nats"])
        for _ in range(3):
            await jobs.store.pool.execute("UPDATE tether_jobs SET available_at = now()")
            with pytest.raises(SinkUnavailableError):
                await runner.run_once()
        assert ref.id is not None
        item = await jobs.store.engine.get(ref.id)
        assert (item.state.value, item.attempts) == ("pending", 0)
    finally:
        await sink.close()
        await proxy.cut()


async def test_a_message_over_the_server_limit_dead_letters_its_job(
    jobs: Jobs, reg: JobRegistry, nats_url: str, stream: tuple[str, str]
) -> None:
    define(reg)
    sink = await JetStreamSink.connect(nats_url, subject_prefix=stream[1])
    try:
        fits = await jobs.enqueue("index", {"doc": 1})
        big = await jobs.enqueue("index", {"doc": 2, "text": "y" * 1_100_000})
        runner = HandoffRunner(jobs, sink, queues=["to-nats"])
        assert await runner.run_once() == 2
        assert fits.id is not None and big.id is not None
        assert (await jobs.store.engine.get(fits.id)).state.value == "done"
        dead = await jobs.store.engine.get(big.id)
        assert (dead.state.value, dead.attempts) == ("dead", 1)
        assert "max_payload" in (dead.last_error or "")
    finally:
        await sink.close()


def test_cli_drains_a_handoff_queue_and_names_bad_input(
    jobs_dsn: str, nats_url: str, stream: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in [v for v in os.environ if v.startswith("TETHER_")]:
        monkeypatch.delenv(var)
    name, prefix = stream
    reg = JobRegistry()
    define(reg)

    async def enqueue() -> list[uuid.UUID | None]:
        jobs = Jobs(await JobStore.connect(jobs_dsn), reg)
        try:
            return [(await jobs.enqueue("index", {"doc": n})).id for n in range(3)]
        finally:
            await jobs.close()

    ids = asyncio.run(enqueue())
    env = {"TETHER_DATABASE_URL": jobs_dsn, "TETHER_SINKS_NATS_URL": nats_url,
           "TETHER_SINKS_NATS_STREAM": name, "TETHER_SINKS_NATS_SUBJECT_PREFIX": prefix}  # fmt: skip
    args = ["jobs", "handoff", "--queue", "to-nats", "--sink", "nats", "--drain"]
    result = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "handed off 3" in result.output
    assert sorted(i for i, _ in asyncio.run(stored(nats_url, name))) == sorted(map(str, ids))
    bad = CliRunner().invoke(app, [*args[:5], "kafka"], env=env, catch_exceptions=False)
    assert bad.exit_code == 2 and "unknown sink 'kafka'" in bad.output
    off = {k: v for k, v in env.items() if "NATS" not in k}
    unset = CliRunner().invoke(app, args, env=off, catch_exceptions=False)
    assert unset.exit_code == 2 and "not configured" in unset.output
