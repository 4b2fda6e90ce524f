"""Broker hand-off: a job queue whose jobs are published to a broker through a sink.

Run: ``.venv/bin/python examples/jobs_handoff.py [ADMIN_DSN]`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``): it creates a scratch database, applies
Tether's migrations, and drops the database at the end. The in-memory sink stands in for a
broker here; any sink works the same way (SQS, JetStream, RabbitMQ...).
"""

from __future__ import annotations

import asyncio
import sys
import uuid

import asyncpg

from tether.core.errors import SinkUnavailableError
from tether.jobs import JobRegistry, Jobs, JobStore
from tether.jobs.handoff import HandoffRunner
from tether.sinks.memory import MemorySink

jobs_registry = JobRegistry()


@jobs_registry.job(name="render_invoice", queue="to-broker", max_attempts=5, handoff=True)
def render_invoice(invoice_id: int) -> None:
    """Run elsewhere: the consumers of the broker's queue do the work."""


async def demo(dsn: str) -> None:
    jobs = Jobs(await JobStore.connect(dsn), jobs_registry)
    broker = MemorySink("memory", dedup=True)
    runner = HandoffRunner(jobs, broker, queues=["to-broker"])

    first = await jobs.enqueue("render_invoice", {"invoice_id": 1})
    await runner.run_once()  # claim, publish, settle: done once the broker accepted it
    event = broker.events[0]
    print("published:", event.type, event.payload, "id is the job's:", event.id == first.id)

    broker.unavailable = True  # the broker is down: the job waits, no attempt spent
    second = await jobs.enqueue("render_invoice", {"invoice_id": 2})
    try:
        await runner.run_once()
    except SinkUnavailableError:
        item = await jobs.store.engine.get(second.id)  # type: ignore[arg-type]
        print("broker down:", item.state.value, "attempts", item.attempts)
    await jobs.close()


async def main(admin_dsn: str) -> None:
    from tether.store import migrations

    name = f"tether_handoff_example_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(migrations.upgrade, dsn)
        await demo(dsn)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
    )
