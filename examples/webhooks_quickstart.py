"""Outgoing webhooks end to end: register an endpoint, publish an event, deliver it signed,
verify it at the receiver, read the delivery log, replay it.

Run: ``.venv/bin/python examples/webhooks_quickstart.py [ADMIN_DSN]`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``): it creates a scratch database, applies
Tether's migrations, serves a receiver on 127.0.0.1, and drops the database at the end.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import uuid
from typing import Any

import asyncpg
import uvicorn

from tether.net import SsrfPolicy
from tether.outbox import add_event
from tether.outbox.relay import Relay
from tether.outbox.store_pg import PostgresOutboxStore
from tether.store import migrations
from tether.webhooks.deliveries import DeliveryLog
from tether.webhooks.dispatcher import Dispatcher
from tether.webhooks.model import EndpointSettings
from tether.webhooks.signing import ReplayGuard, WebhookVerificationError, verify
from tether.webhooks.sink import WebhooksSink
from tether.webhooks.store import EndpointStore


class Receiver:
    """The customer's side: verify the signature, drop repeats by webhook-id."""

    def __init__(self) -> None:
        self.secrets: list[Any] = []
        self.seen = ReplayGuard()
        self.got: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            verify(body, headers, self.secrets)
            status = 204
            fresh = self.seen.first_time(headers["webhook-id"])
            self.got.append("verified" if fresh else "repeat dropped")
        except WebhookVerificationError as exc:
            status = 401
            self.got.append(f"refused: {exc}")
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def demo(dsn: str, receiver: Receiver, url: str) -> None:
    pool = await asyncpg.create_pool(dsn)
    loopback = SsrfPolicy(allow=["127.0.0.1"])  # the SSRF guard refuses loopback otherwise

    # 1. An endpoint per tenant: URL, filters, priority, limits; a secret is made for it.
    endpoints = EndpointStore(pool, ssrf=loopback)
    endpoint = await endpoints.create("acme", EndpointSettings(url, filters=("Order*",)))
    receiver.secrets.append(endpoint.secrets.current)  # handed to the customer once

    # 2. The business transaction adds an event; the relay's webhooks sink fans it out to
    #    one delivery per matching endpoint, in the transaction that settles the event.
    async with pool.acquire() as conn, conn.transaction():
        await add_event(conn, "OrderPlaced", {"order": 7}, tenant_id="acme")
    outbox = await PostgresOutboxStore.connect(dsn)
    await Relay(outbox, [WebhooksSink()]).run_once()
    await outbox.close()

    # 3. The dispatcher POSTs it, signed; `tether webhooks run` does the same as a service.
    dispatcher = Dispatcher(pool, ssrf=loopback)
    await dispatcher.run_once()
    await dispatcher.drain()
    print("receiver:", receiver.got)

    # 4. The delivery log, and a replay: the same webhook-id, so the receiver drops it.
    log = DeliveryLog(pool)
    [delivery] = await log.deliveries("acme")
    [attempt] = await log.attempts("acme", delivery_id=delivery.id)
    print("delivery:", delivery.state.value, "attempt:", attempt.outcome, attempt.status_code)
    await log.replay("acme", delivery.id)
    await dispatcher.run_once()
    await dispatcher.drain()
    print("after replay:", receiver.got)
    await dispatcher.close()
    await pool.close()


async def main(admin_dsn: str) -> None:
    name = f"tether_webhooks_example_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    receiver = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(receiver, interface="asgi3", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await asyncio.to_thread(migrations.upgrade, dsn)
        for _ in range(1000):  # the receiver starts in this loop: wait for it, bounded
            if server.started:
                break
            await asyncio.sleep(0.01)
        await demo(dsn, receiver, f"http://127.0.0.1:{sock.getsockname()[1]}/hooks")
    finally:
        server.should_exit = True
        await serving
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
    )
