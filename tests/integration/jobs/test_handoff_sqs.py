"""Broker hand-off to SQS (moto's server): a FIFO queue receives every job once, with the job's
id as MessageDeduplicationId; an unreachable SQS defers without spending attempts; a message
the queue refuses dead-letters its job."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from tests.support.moto_server import CREDENTIALS, REGION, free_port
from tests.support.sqs_admin import Queue, sqs_client
from tether.core.errors import SinkUnavailableError
from tether.jobs import JobRegistry, Jobs
from tether.jobs.handoff import HandoffRunner, job_event
from tether.queue import Claimed
from tether.sinks.sqs import SqsSink, cloudevent_attributes


@pytest.fixture
async def admin(sqs_endpoint: str) -> AsyncIterator[Any]:
    async with sqs_client(sqs_endpoint) as client:
        yield client


def define(reg: JobRegistry) -> None:
    @reg.job(name="ship", queue="to-sqs", handoff=True)
    async def ship(order: int, note: str = "") -> None:
        raise AssertionError("a hand-off queue's jobs never run here")


async def open_sink(endpoint: str, queue: str) -> SqsSink:
    return await SqsSink.connect(queue, endpoint_url=endpoint, region=REGION, **CREDENTIALS)


async def test_every_job_arrives_once_with_its_id(
    jobs: Jobs, reg: JobRegistry, sqs_endpoint: str, admin: Any
) -> None:
    define(reg)
    queue = await Queue.create(admin, "handoff", fifo=True)
    sink = await open_sink(sqs_endpoint, queue.name)
    try:
        refs = [await jobs.enqueue("ship", {"order": n}) for n in range(6)]
        keyed = await jobs.enqueue("ship", {"order": 99}, dedup_key="order-99")
        runner = HandoffRunner(jobs, sink, queues=["to-sqs"])
        assert await runner.run_once() == 7
        # The same jobs published again (a lease ran out mid-publish): SQS drops the repeats.
        again = await jobs.store.engine.list()
        now = datetime.now(UTC)
        repeats = [job_event(Claimed(item, uuid.uuid4(), now)) for item in again]
        assert all(o.ok for o in await sink.publish(repeats[:1]))
        assert all(o.ok for o in await sink.publish(repeats[1:]))
        messages = await queue.drain()
        ids = sorted(str(r.id) for r in [*refs, keyed])
        assert sorted(cloudevent_attributes(m)["id"] for m in messages) == ids
        for m in messages:
            attrs = cloudevent_attributes(m)
            assert m["Attributes"]["MessageDeduplicationId"] == attrs["id"]
            assert attrs["type"] == "ship" and attrs["topic"] == "to-sqs"
        by_id = {cloudevent_attributes(m)["id"]: m for m in messages}
        assert orjson.loads(by_id[str(keyed.id)]["Body"]) == {"order": 99, "note": ""}
        assert by_id[str(keyed.id)]["Attributes"]["MessageGroupId"] == "order-99"
        assert by_id[str(refs[0].id)]["Attributes"]["MessageGroupId"] == "to-sqs"
        assert {i.state.value for i in again} == {"done"}
    finally:
        await sink.close()
        await queue.delete()


async def test_sqs_unreachable_defers_without_spending_attempts(
    jobs: Jobs, reg: JobRegistry
) -> None:
    define(reg)
    refs = [await jobs.enqueue("ship", {"order": n}) for n in range(3)]
    dead_end = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = AioConfig(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 1})
    async with get_session().create_client(
        "sqs", region_name=REGION, endpoint_url=dead_end, config=config,
        aws_access_key_id=CREDENTIALS["access_key_id"],
        aws_secret_access_key=CREDENTIALS["secret_access_key"],
    ) as client:  # fmt: skip
        sink = SqsSink(client, f"{dead_end}/123456789012/gone.fifo", timeout=2)
        runner = HandoffRunner(jobs, sink, queues=["to-sqs"])
        for _ in range(3):
            await jobs.store.pool.execute("UPDATE tether_jobs SET available_at = now()")
            with pytest.raises(SinkUnavailableError):
                await runner.run_once()
    for ref in refs:
        assert ref.id is not None
        item = await jobs.store.engine.get(ref.id)
        assert (item.state.value, item.attempts) == ("pending", 0)
        assert "broker unavailable" in (item.last_error or "")


async def test_a_message_the_queue_refuses_dead_letters_its_job(
    jobs: Jobs, reg: JobRegistry, sqs_endpoint: str, admin: Any
) -> None:
    define(reg)
    queue = await Queue.create(admin, "small", MaximumMessageSize="1024")
    sink = await open_sink(sqs_endpoint, queue.name)
    try:
        fits = await jobs.enqueue("ship", {"order": 1})
        big = await jobs.enqueue("ship", {"order": 2, "note": "x" * 2000})
        runner = HandoffRunner(jobs, sink, queues=["to-sqs"])
        assert await runner.run_once() == 2
        assert fits.id is not None and big.id is not None
        assert (await jobs.store.engine.get(fits.id)).state.value == "done"
        dead = await jobs.store.engine.get(big.id)
        assert (dead.state.value, dead.attempts) == ("dead", 1)
        assert "1024" in (dead.last_error or "")
        assert len(await queue.drain()) == 1
    finally:
        await sink.close()
        await queue.delete()
