"""A webhook dispatcher SIGKILLed again and again loses no delivery, and repeats only what was
in flight at a kill, with the same ``webhook-id``.

5,000 events fan out to one endpoint; a dispatcher process is killed with SIGKILL four times
while it delivers (each time once a few hundred more requests arrived; its successor is started
beforehand, so no start-up gap hides a loss), and a fifth one finishes. A receiver process
(``webhooks_receiver_process``) records every request; afterwards each one is verified with the
``standardwebhooks`` package. In the end every delivery arrived; each event came with exactly
one ``webhook-id``; every repeated id was first received before a kill and again after it (the
killed process's 3 s lease ran out; live dispatchers renew theirs), and there are no more
repeats than the killed processes could hold in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import asyncpg
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from tests.integration.webhooks.conftest import LOOPBACK
from tests.support.chaos import reap
from tests.support.consumers import read_line
from tether.core.envelope import make_event
from tether.webhooks.journal import FLUSH_AT
from tether.webhooks.model import EndpointSettings
from tether.webhooks.secret_box import SecretBox
from tether.webhooks.sink import WebhooksSink
from tether.webhooks.store import EndpointStore

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

IN_FLIGHT_S = 1.0  # how long before its logged arrival a request may have left its sender
DELIVERIES = 5000
KILLS = 4
MAX_IN_FLIGHT = 32  # as tests/chaos/webhooks_dispatcher_process.py configures it


def spawn(dsn: str, key: str, log: Path) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tests.chaos.webhooks_dispatcher_process", dsn, "127.0.0.1"]
    env = {**os.environ, "TETHER_SECRET_KEY": key}
    with log.open("a") as stderr:  # every dispatcher's warnings, for a failure's message
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)


class Arrivals:
    """The receiver process's log, read as it grows: one JSON line per request."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self._partial = b""
        self.records: list[dict[str, object]] = []

    def __len__(self) -> int:
        chunk = self._partial + self._file.read()
        *lines, self._partial = chunk.split(b"\n")
        self.records += [orjson.loads(line) for line in lines]
        return len(self.records)

    def close(self) -> None:
        self._file.close()


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
    kills: list[float] = []
    workdir = tempfile.TemporaryDirectory()
    log_path = Path(workdir.name) / "arrivals.jsonl"
    log_path.touch()
    warnings = Path(workdir.name) / "dispatchers.log"
    arrivals = Arrivals(log_path)
    receiver = subprocess.Popen(
        [sys.executable, "-m", "tests.chaos.webhooks_receiver_process", str(log_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        port = int((await read_line(receiver, "receiver ready", timeout=30)).split()[-1])
        store = EndpointStore(pool, ssrf=LOOPBACK, box=SecretBox(key))
        ep = await store.create(
            None, EndpointSettings(f"http://127.0.0.1:{port}/hook", concurrency=100)
        )
        secret = str(ep.secrets.current)
        await fan_out(pool)
        started = time.monotonic()
        deadline = started + 240  # generous: the shared machine is often loaded
        proc = spawn(pg_dsn, key, warnings)
        procs.append(proc)
        await read_line(proc, "dispatcher ready", timeout=30)
        for _ in range(KILLS):
            successor = spawn(pg_dsn, key, warnings)  # starts while this one delivers
            procs.append(successor)
            target = len(arrivals) + 400
            while len(arrivals) < target:
                assert time.monotonic() < deadline, "deliveries stalled"
                assert proc.poll() is None, "the dispatcher died by itself"
                await asyncio.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills.append(time.monotonic())
            await read_line(successor, "dispatcher ready", timeout=30)
            proc = successor
        done = "SELECT count(*) FROM tether_webhook_deliveries WHERE state = 'done'"
        while await pool.fetchval(done) < DELIVERIES:
            assert time.monotonic() < deadline, f"lost: {len(arrivals)} arrived, kills {kills}"
            assert proc.poll() is None, "the last dispatcher died"
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        len(arrivals)  # read the last lines: a success is settled only after it arrived
        verifier = Webhook(secret)
        for record in arrivals.records:  # every request, verified as a receiver would
            verifier.verify(str(record["body"]), record["headers"])  # type: ignore[arg-type]
        ids = {
            f"msg_{r['id']}" for r in await pool.fetch("SELECT id FROM tether_webhook_deliveries")
        }
        by_id: dict[str, list[float]] = defaultdict(list)
        ids_of_event: dict[str, set[str]] = defaultdict(set)
        for record in arrivals.records:
            webhook_id = record["headers"]["webhook-id"]  # type: ignore[index]
            by_id[webhook_id].append(float(record["at"]))  # type: ignore[arg-type]
            ids_of_event[orjson.loads(str(record["body"]))["id"]].add(webhook_id)
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
            # In flight at a kill: sent before it, though the receiver may log it a little after
            # (the bytes were already in its socket); sent again only after it.
            explained = any(first - IN_FLIGHT_S < k < again for k in kills)
            assert explained, (
                f"a repeat that no kill explains: {times}, kills {kills}; the dispatchers "
                f"warned:\n{warnings.read_text()[-4000:]}"
            )
        assert sum(len(t) - 1 for t in repeats.values()) <= KILLS * (MAX_IN_FLIGHT + FLUSH_AT)
        print(
            f"{elapsed:.1f} s, {len(arrivals.records)} requests, {len(repeats)} repeated ids "
            f"after {KILLS} kills"
        )
    finally:
        reap([*procs, receiver])
        arrivals.close()
        workdir.cleanup()
        await pool.close()
