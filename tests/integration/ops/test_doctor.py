"""``tether doctor`` on a real installation: PostgreSQL, NATS JetStream and a running relay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import psycopg
import pytest
from typer.testing import CliRunner

from tests.integration.ops import doctor_setup
from tests.integration.ops.doctor_setup import Installation
from tether.cli import app
from tether.ops.doctor import Status

pytestmark = [pytest.mark.postgres, pytest.mark.nats]


@pytest.fixture
async def inst(pg_dsn: str, nats_url: str) -> AsyncIterator[Installation]:
    found = doctor_setup.settings(pg_dsn, nats_url)
    await asyncio.to_thread(doctor_setup.install, found)
    yield found
    await doctor_setup.drop_stream(found, nats_url)


def statuses(results: dict[str, object]) -> dict[str, str]:
    return {name: r.status.value for name, r in results.items()}  # type: ignore[attr-defined]


async def test_passes_on_the_reference_apps_database_with_a_relay(inst: Installation) -> None:
    async with doctor_setup.running_relay(inst):
        results = await inst.diagnose()
    assert statuses(results) == {
        "database reachable": "ok",
        "migrations current": "ok",
        "tables": "ok",
        "indexes": "ok",
        "autovacuum": "ok",
        "NOTIFY round trip": "ok",
        "clock skew": "ok",
        "relay heartbeat": "ok",
        "runners": "ok",
        "dead letters": "ok",
        "oldest pending": "ok",
        "sink nats": "ok",
        "end-to-end event": "ok",
    }
    assert "seen on nats" in results["end-to-end event"].detail
    # Cleaned up: neither the probe's row nor its message is left behind.
    with psycopg.connect(inst.db.url) as conn:
        assert conn.execute("SELECT count(*) FROM tether_outbox").fetchone() == (0,)
    import nats

    nc = await nats.connect(inst.cfg.sinks.nats.url)  # type: ignore[attr-defined]
    try:
        info = await nc.jsm().stream_info(inst.stream)
        assert info.state.messages == 0
    finally:
        await nc.close()


async def test_a_dropped_index_and_a_missing_migration_fail_with_their_fixes(
    inst: Installation,
) -> None:
    with psycopg.connect(inst.db.url, autocommit=True) as conn:
        conn.execute("DROP INDEX tether_outbox_key_live")
        conn.execute("ALTER TABLE tether_outbox RESET (autovacuum_vacuum_scale_factor)")
    results = await inst.diagnose(end_to_end=False)
    index = results["indexes"]
    assert index.status is Status.FAIL
    assert index.detail == "missing: tether_outbox_key_live"
    assert index.fix.startswith("recreate: CREATE INDEX tether_outbox_key_live ON tether_outbox")
    vacuum = results["autovacuum"]
    assert vacuum.status is Status.WARN
    assert "ALTER TABLE tether_outbox SET (autovacuum_vacuum_scale_factor = 0.01);" in vacuum.fix
    assert results["tables"].status is Status.OK
    assert results["migrations current"].status is Status.OK

    with psycopg.connect(inst.db.url, autocommit=True) as conn:
        latest = conn.execute("SELECT max(version_num) FROM tether_alembic_version").fetchone()
        conn.execute("DELETE FROM tether_alembic_version")
        conn.execute("INSERT INTO tether_alembic_version VALUES ('0001')")
    check = (await inst.diagnose(end_to_end=False))["migrations current"]
    assert check.status is Status.FAIL
    assert "at 0001" in check.detail and str(latest[0]) in check.detail  # type: ignore[index]
    assert "tether migrate" in check.fix

    with psycopg.connect(inst.db.url, autocommit=True) as conn:
        conn.execute("DROP TABLE tether_alembic_version")
    check = (await inst.diagnose(end_to_end=False))["migrations current"]
    assert check.status is Status.FAIL and "tether migrate --stamp" in check.fix


async def test_without_a_relay_and_with_a_backlog(inst: Installation) -> None:
    from tether.ops.doctor import Probe

    # The command: JSON, exit 1, and only the relay's absence fails (no probe here).
    runner = CliRunner()
    nats_url = inst.cfg.sinks.nats.url  # type: ignore[attr-defined]
    args = ["doctor", "--json", "--no-end-to-end", "--database-url", inst.db.url]
    result = await asyncio.to_thread(
        runner.invoke, app, args, env={"TETHER_SINKS_NATS_URL": nats_url}
    )
    body = json.loads(result.stdout)
    assert result.exit_code == 1
    assert body["ok"] is False
    assert [c["name"] for c in body["checks"] if c["status"] == "fail"] == ["relay heartbeat"]
    assert {"name", "status", "detail", "fix"} <= set(body["checks"][0])

    # The probe waits in vain, then is removed; the fix says to start a relay.
    results = await inst.diagnose(probe=Probe(timeout=0.5))
    assert results["relay heartbeat"].status is Status.FAIL
    assert "tether relay" in results["relay heartbeat"].fix
    e2e = results["end-to-end event"]
    assert e2e.status is Status.FAIL and "tether relay" in e2e.fix
    with psycopg.connect(inst.db.url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM tether_outbox").fetchone() == (0,)
        for state, age in (("dead", "1 minute"), ("pending", "2 hours")):
            conn.execute(
                "INSERT INTO tether_outbox (id, topic, type, source, payload, state, created_at)"
                " VALUES (gen_random_uuid(), 't', 'x', 's', '{}', %s, now() - %s::interval)",
                (state, age),
            )
    results = await inst.diagnose(end_to_end=False)
    assert results["dead letters"].status is Status.WARN
    assert results["dead letters"].detail.startswith("outbox 1")
    assert "tether dlq" in results["dead letters"].fix
    assert results["oldest pending"].status is Status.FAIL


def test_an_unreachable_database_fails_once_and_the_sinks_are_still_checked(
    nats_url: str,
) -> None:
    result = CliRunner().invoke(
        app,
        ["doctor", "--json", "--database-url", "postgresql://nobody@127.0.0.1:1/x"],
        env={"TETHER_SINKS_NATS_URL": nats_url},
    )
    body = json.loads(result.stdout)
    assert result.exit_code == 1
    first, *rest = body["checks"]
    assert first["status"] == "fail" and "start PostgreSQL" in first["fix"]
    assert {c["name"]: c["status"] for c in rest if c["status"] != "skip"} == {"sink nats": "ok"}


def test_bad_flags_exit_2() -> None:
    runner = CliRunner()
    bad_topic = runner.invoke(app, ["doctor", "--probe-topic", "a b", "--db", "postgresql://x/y"])
    assert bad_topic.exit_code == 2
    order = runner.invoke(
        app, ["doctor", "--pending-warn", "10", "--pending-fail", "5", "--db", "postgresql://x/y"]
    )
    assert order.exit_code == 2 and "--pending-warn" in order.stderr
