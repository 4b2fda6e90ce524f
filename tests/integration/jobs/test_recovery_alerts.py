"""The recovered-jobs alert through the dead-letter monitor's channels: a real Slack-like
receiver and a signed webhook get one alert a day across two workers (the level is in
tether_alert_state), and a channel that was down gets it later with the same id."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.http_receiver import Answer, Received, receiving
from tether.jobs import JobRegistry, Jobs, JobWorker
from tether.jobs import worker as worker_module
from tether.net import SsrfPolicy
from tether.ops.alerts_channels import SlackAlerts, WebhookAlerts
from tether.webhooks.signing import WebhookSecret

STALE = timedelta(milliseconds=300)
LOOPBACK = SsrfPolicy(allow=["127.0.0.1"])


async def _strand(jobs: Jobs, n: int) -> None:
    """``n`` jobs claimed by a worker that died: stale once the lease runs out."""
    for _ in range(n):
        await jobs.enqueue("work")
    await jobs.store.claim("default", n, lease=STALE, worker="gone")
    await asyncio.sleep(STALE.total_seconds() + 0.05)


def _worker(jobs: Jobs, channels: list) -> JobWorker:  # type: ignore[type-arg]
    return JobWorker(jobs, stale_after=STALE, heartbeat_every=timedelta(milliseconds=100),
                     recovery_alert_threshold=2, alert_channels=channels)  # fmt: skip


async def test_one_alert_a_day_per_channel_across_workers(jobs: Jobs, reg: JobRegistry) -> None:
    @reg.job(name="work")
    async def work() -> None: ...

    await jobs.store.pool.execute("DELETE FROM tether_alert_state")
    secret = WebhookSecret.generate()
    async with receiving() as slack_rx, receiving() as hook_rx:
        channels = [
            SlackAlerts.connect(f"{slack_rx.url}/services/T/B/x", policy=LOOPBACK),
            WebhookAlerts.connect(f"{hook_rx.url}/alerts", secrets=[secret], policy=LOOPBACK),
        ]
        first, second = _worker(jobs, channels), _worker(jobs, channels)
        await _strand(jobs, 2)
        await first.recover_once()  # 2: not above the threshold
        assert slack_rx.requests == [] and hook_rx.requests == []
        await _strand(jobs, 2)
        await first.recover_once()  # 4 > 2: alert
        await _strand(jobs, 1)
        await second.recover_once()  # another worker, same day: already alerted
        assert len(slack_rx.requests) == 1 and len(hook_rx.requests) == 1
        slack = orjson.loads(slack_rx.requests[0].body)
        assert slack["text"].startswith("Jobs recovered from stale state: 4 on ")
        alert = Webhook(str(secret)).verify(hook_rx.requests[0].body, hook_rx.requests[0].headers)
        assert alert["type"] == "tether.jobs.recovered" and alert["count"] == 4
        assert alert["threshold"] == 2
        for channel in channels:
            await channel.close()


async def test_a_channel_down_gets_the_alert_later_with_the_same_id(
    jobs: Jobs, reg: JobRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    @reg.job(name="work")
    async def work() -> None: ...

    await jobs.store.pool.execute("DELETE FROM tether_alert_state")
    monkeypatch.setattr(worker_module, "ALERT_RETRY_S", 0.0)
    down = True

    def answer(_: Received) -> Answer:
        return Answer(status=503 if down else 200)

    async with receiving(answer) as hook_rx:
        channel = WebhookAlerts.connect(f"{hook_rx.url}/alerts", policy=LOOPBACK)
        worker = _worker(jobs, [channel])
        await _strand(jobs, 3)
        await worker.recover_once()
        assert len(hook_rx.rejected) == 1 and hook_rx.requests == []
        down = False
        await worker.recover_once()  # nothing recovered: the retry alone
        assert len(hook_rx.requests) == 1
        ids = [orjson.loads(r.body)["id"] for r in (*hook_rx.rejected, *hook_rx.requests)]
        assert len(set(ids)) == 1  # the same alert, so a receiver can drop a repeat
        await worker.recover_once()
        assert len(hook_rx.requests) == 1  # delivered: no more tries
        await channel.close()
