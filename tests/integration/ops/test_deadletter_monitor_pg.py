"""The dead-letter monitor on PostgreSQL: the outbox source counts real dead rows, the alert
state in tether_alert_state keeps several monitors and restarts from repeating an alert, and
the Slack and webhook channels deliver to a real receiver (signatures checked with the
``standardwebhooks`` package). Also ``tether monitor deadletters --once``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from tests.support.http_receiver import Answer, receiving
from tether.cli import app
from tether.net import SsrfPolicy
from tether.ops.alerts import Rule
from tether.ops.alerts_channels import SlackAlerts, WebhookAlerts
from tether.ops.alerts_state import PostgresAlertState
from tether.ops.deadletters import DeadLetterMonitor, OutboxDeadLetters
from tether.outbox.table import OUTBOX
from tether.queue.postgres import PostgresQueue, create_pool
from tether.webhooks.signing import WebhookSecret

pytestmark = pytest.mark.postgres
LOOPBACK = SsrfPolicy(allow=["127.0.0.1"])


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(pg_dsn, max_size=6)
    yield p
    await p.close()


async def add_dead(pool: asyncpg.Pool, n: int) -> None:
    await pool.execute(
        "INSERT INTO tether_outbox (id, state, topic, type, payload, finished_at)"
        " SELECT gen_random_uuid(), 'dead', 'order', 'OrderPlaced', '{}', now()"
        " FROM generate_series(1, $1)",
        n,
    )


def monitor(pool: asyncpg.Pool, channels: list, threshold: int = 5) -> DeadLetterMonitor:  # type: ignore[type-arg]
    source = OutboxDeadLetters(PostgresQueue(pool, spec=OUTBOX, queue=None))
    return DeadLetterMonitor([source], channels, PostgresAlertState(pool), rule=Rule(threshold))


async def test_alerts_reach_slack_and_a_signed_webhook_once_per_level(pool: asyncpg.Pool) -> None:
    secret = WebhookSecret.generate()
    async with receiving() as slack_rx, receiving() as hook_rx:
        slack = SlackAlerts.connect(f"{slack_rx.url}/services/T/B/x", policy=LOOPBACK)
        hook = WebhookAlerts.connect(f"{hook_rx.url}/alerts", secrets=[secret], policy=LOOPBACK)
        m = monitor(pool, [slack, hook])
        await add_dead(pool, 2)
        assert [a.kind.value for a in (await m.check_once()).sent] == ["increase", "increase"]
        await m.check_once()  # same count: nothing
        await add_dead(pool, 4)
        report = await m.check_once()
        assert report.counts == {"outbox": 6}
        assert [a.kind.value for a in report.sent] == ["threshold", "threshold"]
        restarted = monitor(pool, [slack, hook])  # a new process: the levels are in PostgreSQL
        assert (await restarted.check_once()).sent == []
        assert len(slack_rx.requests) == 2 and len(hook_rx.requests) == 2
        body = orjson.loads(slack_rx.requests[1].body)
        assert body["text"].startswith("Dead letters over threshold: 6 dead in outbox")
        for request in hook_rx.requests:
            alert = Webhook(str(secret)).verify(request.body, request.headers)
            assert request.headers["webhook-id"] == alert["id"]
        assert [orjson.loads(r.body)["kind"] for r in hook_rx.requests] == ["increase", "threshold"]
        await pool.execute("DELETE FROM tether_outbox")
        assert [a.kind.value for a in (await restarted.check_once()).sent] == ["cleared", "cleared"]
        await slack.close()
        await hook.close()


async def test_concurrent_monitors_send_each_level_once(pool: asyncpg.Pool) -> None:
    async with receiving() as rx:
        channels = [SlackAlerts.connect(rx.url, policy=LOOPBACK) for _ in range(4)]
        monitors = [monitor(pool, [c]) for c in channels]
        try:
            for n in (3, 4, 9):  # 3, 7 (over the threshold of 5), 16
                await add_dead(pool, n)
                await asyncio.gather(*(m.check_once() for m in monitors))
        finally:
            for c in channels:
                await c.close()
        texts = [orjson.loads(r.body)["text"] for r in rx.requests]
        assert texts == [
            "Dead letters growing: 3 dead in outbox (was 0)",
            "Dead letters over threshold: 7 dead in outbox (threshold 5)",
            "Dead letters growing: 16 dead in outbox (was 7)",
        ]


async def test_a_failed_delivery_is_sent_again_with_the_same_id(pool: asyncpg.Pool) -> None:
    answers = iter([Answer(503), Answer(200)])
    async with receiving(lambda r: next(answers)) as rx:
        hook = WebhookAlerts.connect(rx.url, policy=LOOPBACK)
        m = monitor(pool, [hook])
        await add_dead(pool, 1)
        first = await m.check_once()
        assert first.sent == [] and "answered 503" in first.errors[0]
        second = await m.check_once()
        assert len(second.sent) == 1
        assert orjson.loads(rx.rejected[0].body)["id"] == orjson.loads(rx.requests[0].body)["id"]
        await hook.close()


def test_command_checks_once_and_alerts(pg_dsn: str) -> None:
    async def scenario() -> tuple[int, list[str], str]:
        async with receiving() as rx:
            pool = await create_pool(pg_dsn)
            await add_dead(pool, 3)
            await pool.close()
            result = await asyncio.to_thread(
                CliRunner().invoke,
                app,
                [
                    "monitor",
                    "deadletters",
                    "--once",
                    "--json",
                    "--threshold",
                    "2",
                    "--allow",
                    "127.0.0.1",
                    "--source",
                    "outbox",
                    "--source",
                    "jobs",
                    "--source",
                    "webhooks",
                    "--db",
                    pg_dsn,
                ],
                env={"TETHER_ALERT_WEBHOOK_URL": f"{rx.url}/alerts"},
            )
            return result.exit_code, [r.body.decode() for r in rx.requests], result.output

    code, bodies, output = asyncio.run(scenario())
    assert code == 0, output
    line = json.loads(output.strip().splitlines()[-1])
    assert line["counts"] == {"outbox": 3, "jobs": 0, "webhooks": 0}
    assert [s["kind"] for s in line["sent"]] == ["threshold"]
    assert len(bodies) == 1 and json.loads(bodies[0])["count"] == 3


@pytest.mark.slow
def test_command_keeps_watching_until_sigterm(pg_dsn: str) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tether.cli",
            "monitor",
            "deadletters",
            "--interval",
            "1",
            "--db",
            pg_dsn,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TETHER_")},
    )
    try:
        assert proc.stdout is not None
        first = (
            proc.stdout.readline()
        )  # blocks until the first check (the test's timeout bounds it)
        assert first.strip() == "outbox: 0 dead (no alert due)", first + proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_command_refuses_bad_input() -> None:
    pg_dsn = "postgresql://nobody@127.0.0.1:1/unused"  # refused before any connection
    runner = CliRunner()
    unknown = runner.invoke(
        app, ["monitor", "deadletters", "--once", "--source", "nope", "--db", pg_dsn]
    )
    assert unknown.exit_code == 2 and "known sources are" in unknown.output
    secret = runner.invoke(
        app,
        [
            "monitor",
            "deadletters",
            "--once",
            "--db",
            pg_dsn,
            "--webhook-url",
            "https://example.com/a",
            "--webhook-secret",
            "nothex",
        ],
    )
    assert (
        secret.exit_code == 2
        and "--webhook-secret" in secret.output
        and "nothex" not in secret.output
    )
    private = runner.invoke(
        app,
        [
            "monitor",
            "deadletters",
            "--once",
            "--db",
            pg_dsn,
            "--slack-webhook-url",
            "http://10.0.0.5/x",
        ],
    )
    assert private.exit_code == 2 and "10.0.0.5" in private.output


async def test_a_monitor_dying_after_the_send_but_before_the_commit_resends_the_same_id(
    pool: asyncpg.Pool,
) -> None:
    class DiesAfterSending:
        name = "webhook"

        def __init__(self) -> None:
            self.ids: list[str] = []
            self.die = True

        async def send(self, alert) -> None:  # type: ignore[no-untyped-def]
            self.ids.append(alert.id)
            if self.die:
                raise SystemExit("killed between the send and the commit")

        async def close(self) -> None:
            pass

    channel = DiesAfterSending()
    await add_dead(pool, 2)
    with pytest.raises(SystemExit):
        await monitor(pool, [channel]).check_once()
    channel.die = False
    await monitor(pool, [channel]).check_once()  # the next process
    await monitor(pool, [channel]).check_once()
    assert len(channel.ids) == 2 and channel.ids[0] == channel.ids[1]  # at least once, same id
