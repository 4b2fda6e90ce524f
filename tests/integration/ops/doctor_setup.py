"""An installation for the doctor to check: a migrated database with the reference app's tables,
a NATS stream of its own, and a relay running in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import create_async_engine

from tether.commands import migrate
from tether.commands.relay import relay_for
from tether.config import Database, Settings, load_settings
from tether.ops import doctor


@dataclass(frozen=True)
class Installation:
    cfg: Settings
    db: Database
    stream: str

    async def diagnose(self, **options: object) -> dict[str, doctor.Result]:
        results = await doctor.diagnose(self.cfg, self.db, doctor.Options(**options))  # type: ignore[arg-type]
        return {r.name: r for r in results}


def settings(dsn: str, nats_url: str) -> Installation:
    token = uuid.uuid4().hex[:10]
    env = {
        "TETHER_DATABASE_URL": dsn,
        "TETHER_SINKS_NATS_URL": nats_url,
        "TETHER_SINKS_NATS_STREAM": f"DOCTOR_{token}",
        "TETHER_SINKS_NATS_SUBJECT_PREFIX": f"doctor{token}",
    }
    cfg = load_settings(None, env=env)
    return Installation(cfg, cfg.database(), f"DOCTOR_{token}")


def install(inst: Installation) -> None:
    """The reference app's database: Tether's schema recorded as migrated, the app's tables."""
    migrate.migrate_postgres(inst.db, stamp=True)  # the template holds the current schema
    asyncio.run(_app_tables(inst.db.url))


async def _app_tables(dsn: str) -> None:
    from examples.tradedesk import db as tradedesk_db

    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        await tradedesk_db.create_schema(engine)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def running_relay(inst: Installation) -> AsyncIterator[None]:
    stop = asyncio.Event()
    async with relay_for(inst.cfg, inst.db, stop, patient=False) as relay:
        assert relay is not None
        task = asyncio.create_task(relay.run(stop))
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)


async def drop_stream(inst: Installation, nats_url: str) -> None:
    import nats

    nc = await nats.connect(nats_url)
    try:
        with contextlib.suppress(Exception):
            await nc.jsm().delete_stream(inst.stream)
    finally:
        await nc.close()
