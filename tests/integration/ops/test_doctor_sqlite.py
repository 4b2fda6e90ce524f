"""``tether doctor`` on embedded SQLite: the checks that apply, and the probe through a relay."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from tether.commands.migrate import migrate_sqlite
from tether.commands.relay import relay_for
from tether.config import load_settings
from tether.ops import doctor
from tether.ops.doctor import Status


async def test_a_migrated_sqlite_file_with_a_relay_passes_and_a_dropped_index_fails(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    cfg = load_settings(None, env={"TETHER_DATABASE_URL": url, "TETHER_SINKS_MEMORY_ENABLED": "1"})
    db = cfg.database()

    missing = {r.name: r for r in await doctor.diagnose(cfg, db)}
    assert missing["database reachable"].status is Status.FAIL
    assert "tether migrate" in missing["database reachable"].fix

    await migrate_sqlite(db)
    stop = asyncio.Event()
    async with relay_for(cfg, db, stop, patient=False) as relay:
        assert relay is not None
        task = asyncio.create_task(relay.run(stop))
        try:
            results = {r.name: r for r in await doctor.diagnose(cfg, db)}
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
    statuses = {n: r.status for n, r in results.items()}
    skipped = {"autovacuum", "NOTIFY round trip", "clock skew", "relay heartbeat", "runners"}
    assert {n for n, s in statuses.items() if s is Status.SKIP} == skipped
    assert {s for n, s in statuses.items() if n not in skipped} == {Status.OK}, results
    assert results["end-to-end event"].detail == "written, relayed and acknowledged by memory"

    with sqlite3.connect(db.sqlite_path) as conn:  # type: ignore[arg-type]
        conn.execute("DROP INDEX tether_outbox_key_live")
        assert conn.execute("SELECT count(*) FROM tether_outbox").fetchone() == (0,)
    after = {r.name: r for r in await doctor.diagnose(cfg, db, doctor.Options(end_to_end=False))}
    assert after["indexes"].status is Status.FAIL
    assert after["indexes"].detail == "missing: tether_outbox_key_live"
