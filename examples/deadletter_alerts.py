"""Targets and dead-letter alerts: the ``http`` and ``slack`` sinks, and the dead-letter monitor.

Run: ``.venv/bin/python examples/deadletter_alerts.py`` (needs the fastapi and http extras and
uvicorn). It serves one loopback receiver standing in for an n8n workflow, a Slack incoming
webhook and an alerting endpoint, then:

1. publishes two events with the ``http`` sink (CloudEvents binary mode, signed) and one with
   the ``slack`` sink;
2. runs four checks of the dead-letter monitor while a source's dead count goes 3, 3, 120, 0:
   an alert for each new level (to Slack and to a signed webhook), none for a repeat.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import defaultdict

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tether.core.envelope import make_event
from tether.net import SsrfPolicy
from tether.ops.alerts import Rule
from tether.ops.alerts_channels import SlackAlerts, WebhookAlerts
from tether.ops.alerts_state import MemoryAlertState
from tether.ops.deadletters import DeadLetterMonitor
from tether.sinks.http import HttpSink
from tether.sinks.slack import SlackSink
from tether.webhooks.signing import WebhookSecret, verify

SECRET = WebhookSecret.generate()  # shared with the workflow and the alert receiver
LOCAL = SsrfPolicy(allow=["127.0.0.1"])  # the SSRF guard refuses loopback unless allowed
received: dict[str, list[tuple[dict[str, str], bytes]]] = defaultdict(list)


async def receive(request: Request) -> Response:
    body = await request.body()
    if request.url.path.startswith(("/n8n", "/alerts")):
        verify(body, request.headers, [SECRET])  # raises on a bad signature
    received[request.url.path.split("/")[1]].append((dict(request.headers), body))
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])


async def publish_to_targets(base: str) -> None:
    workflow = await HttpSink.connect(
        f"{base}/n8n/webhook/orders",  # an n8n Webhook node's production URL
        policy=LOCAL,
        secrets=[SECRET],  # Standard Webhooks signature; webhook-id is the event id
        headers={"X-N8N-Team": "shop"},  # any extra header the workflow expects
    )
    events = [
        make_event("OrderPlaced", {"order": n}, aggregate_type="order", aggregate_id=f"o-{n}")
        for n in (1, 2)
    ]
    outcomes = await workflow.publish(events)
    print("http outcomes:", [o.ok for o in outcomes])
    got = sorted(f"{h['ce-type']} {h['ce-subject']} {body.decode()}" for h, body in received["n8n"])
    print("workflow got:", got)
    await workflow.close()

    slack = await SlackSink.connect(f"{base}/slack/services/T000/B000/XXXX", policy=LOCAL)
    await slack.publish(events[:1])  # one message per second per webhook, paced
    print("slack got:", json.loads(received["slack"][0][1])["text"])
    await slack.close()


class FailedPayments:
    """Any object with a name and ``dead_count`` is a dead-letter source."""

    name = "payments"

    def __init__(self) -> None:
        self.dead = 0

    async def dead_count(self) -> int:
        return self.dead


async def watch_dead_letters(base: str) -> None:
    source = FailedPayments()
    channels = [
        SlackAlerts.connect(f"{base}/slack/services/T000/B000/YYYY", policy=LOCAL),
        WebhookAlerts.connect(f"{base}/alerts", secrets=[SECRET], policy=LOCAL),
    ]
    # MemoryAlertState for one process; PostgresAlertState(pool) shares the levels between
    # monitors and restarts.
    monitor = DeadLetterMonitor([source], channels, MemoryAlertState(), rule=Rule(threshold=100))
    for dead in (3, 3, 120, 0):
        source.dead = dead
        report = await monitor.check_once()
        print(f"dead={dead}:", [alert.summary() for alert in report.sent][:1] or "no alert")
    for channel in channels:
        await channel.close()
    alerts = [json.loads(body)["kind"] for _, body in received["alerts"]]
    print("webhook alerts:", alerts)


async def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 (uvicorn.Server has no "started" event)
            await asyncio.sleep(0.01)
    try:
        await publish_to_targets(base)
        await watch_dead_letters(base)
    finally:
        server.should_exit = True
        await serving


if __name__ == "__main__":
    asyncio.run(main())
