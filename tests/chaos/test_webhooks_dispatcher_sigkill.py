"""A webhook dispatcher SIGKILLed again and again loses no delivery, and repeats only what was
in flight at a kill, with the same ``webhook-id``.

5,000 events fan out to one endpoint; a dispatcher process is killed with SIGKILL four times
while it delivers (each time once a few hundred more requests arrived), and a fifth one
finishes. The receiver verifies every request with the ``standardwebhooks`` package. In the end
every delivery arrived; each event came with exactly one ``webhook-id``; every repeated id was
first received before a kill and again after it (its 8 s lease ran out with the process), and
there are no more repeats than the killed processes could hold in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import asyncpg
import pytest

from tests.integration.webhooks.conftest import LOOPBACK
from tests.integration.webhooks.receiver import receiving
from tests.support.consumers import read_line
from tether.core.envelope import make_event
from tether.webhooks.journal import FLUSH_AT
from tether.webhooks.model import EndpointSettings
from tether.webhooks.secret_box import SecretBox
from tether.webhooks.sink import WebhooksSink
from tether.webhooks.store import EndpointStore

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(480)]

DELIVERIES = 5000
KILLS = 4
MAX_IN_FLIGHT = 32  # as tests/chaos/webhooks_dispatcher_process.py configures it


def spawn(dsn: str, key: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tests.chaos.webhooks_dispatcher_process", dsn, "127.0.0.1"]
    env = {**os.environ, "TETHER_SECRET_KEY": key}
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )


async def fan_out(pool: asyncpg.Pool) -> None:
    """The sink's fan-out, straight into one transaction (the relay's part is tested elsewhere)."""
    sink = WebhooksSink()
    events = [make_event("OrderPlaced", {"n": n}) for n in range(DELIVERIES)]
    async with pool.acquire() as conn, conn.transaction():
        for start in range(0, DELIVERIES, 1000):
            assert all(o.ok for o in await sink.publish_in(conn, events[start : start + 1000]))


async def test_sigkilled_dispatchers_lose_nothing_and_repeat_only_in_flight(pg_dsn: str) -> None:
    key = SecretBox.generate_key()
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    procs: list[subprocess.Popen[str]] = []
    arrivals: list[tuple[float, str, str]] = []  # (time, webhook-id, event id)
    kills: list[float] = []
    try:
        async with receiving() as rx:
            store = EndpointStore(pool, ssrf=LOOPBACK, box=SecretBox(key))
            ep = await store.create(None, EndpointSettings(rx.url(), concurrency=100))
            rx.secrets.append(str(ep.secrets.current))

            def record(request: object) -> object:
                from tests.integration.webhooks.receiver import Reply

                arrivals.append((time.monotonic(), request.webhook_id, request.json["id"]))  # type: ignore[attr-defined]
                return Reply()

            rx.respond = record  # type: ignore[assignment]
            await fan_out(pool)
            started = time.monotonic()
            deadline = started + 420  # generous: the shared machine is often loaded
            for round_ in range(KILLS + 1):
                proc = spawn(pg_dsn, key)
                procs.append(proc)
                await read_line(proc, "dispatcher ready", timeout=30)
                if round_ == KILLS:
                    break
                target = len(arrivals) + 400
                while len(arrivals) < target:
                    assert time.monotonic() < deadline, "deliveries stalled"
                    assert proc.poll() is None, "the dispatcher died by itself"
                    await asyncio.sleep(0.01)
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                kills.append(time.monotonic())
            done = "SELECT count(*) FROM tether_webhook_deliveries WHERE state = 'done'"
            while await pool.fetchval(done) < DELIVERIES:
                assert time.monotonic() < deadline, f"lost: {len(arrivals)} arrived, kills {kills}"
                assert procs[-1].poll() is None, "the last dispatcher died"
                await asyncio.sleep(0.2)
        assert not rx.forged
        ids = {
            f"msg_{r['id']}" for r in await pool.fetch("SELECT id FROM tether_webhook_deliveries")
        }
        by_id: dict[str, list[float]] = defaultdict(list)
        ids_of_event: dict[str, set[str]] = defaultdict(set)
        for at, webhook_id, event_id in arrivals:
            by_id[webhook_id].append(at)
            ids_of_event[event_id].add(webhook_id)
        assert set(by_id) == ids and len(ids) == DELIVERIES  # every delivery arrived
        assert len(ids_of_event) == DELIVERIES
        assert all(len(s) == 1 for s in ids_of_event.values())  # one webhook-id per event
        failed = await pool.fetchval(
            "SELECT count(*) FROM tether_webhook_attempts WHERE outcome <> 'ok'"
        )
        assert failed == 0  # no timeout or error: any repeat comes from a kill
        repeats = {w: times for w, times in by_id.items() if len(times) > 1}
        for times in repeats.values():
            first, again = times[0], times[1]
            assert any(first < k < again for k in kills), "a repeat that no kill explains"
        assert sum(len(t) - 1 for t in repeats.values()) <= KILLS * (MAX_IN_FLIGHT + FLUSH_AT)
        print(
            f"{time.monotonic() - started:.1f} s, {len(arrivals)} requests, {len(repeats)} repeated ids after {KILLS} kills"
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        await pool.close()
