"""A webhook receiver that verifies Standard Webhooks signatures with tether's helper.

Run: ``.venv/bin/python examples/webhook_receiver.py`` (needs the fastapi and http extras and
uvicorn). It serves the receiver on 127.0.0.1, then plays the sender: a signed delivery, the
same delivery again (a retry), a forged one, a stale one, and one signed during a secret
rotation. Prints one line per delivery.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import UTC, datetime

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.net import SsrfPolicy, safe_client
from tether.webhooks.signing import (
    ReplayGuard,
    SecretRing,
    WebhookSecret,
    WebhookVerificationError,
    sign,
    verify,
)

# The receiver's side: the secret it was given when it subscribed (whsec_...).
RECEIVER_SECRET = WebhookSecret.generate()
replays = ReplayGuard(tolerance_s=300)


async def receive(request: Request) -> Response:
    body = await request.body()  # verify the raw bytes, before any JSON parsing
    try:
        verify(body, request.headers, [RECEIVER_SECRET], tolerance_s=300)
    except WebhookVerificationError as exc:
        return JSONResponse({"error": str(exc)}, status_code=401)
    if not replays.first_time(request.headers["webhook-id"]):
        return JSONResponse({"status": "duplicate, ignored"})  # 2xx: the sender stops retrying
    event = json.loads(body)
    return JSONResponse({"status": f"handled {event['type']}"})


app = Starlette(routes=[Route("/hooks", receive, methods=["POST"])])


async def send(url: str, msg_id: str, timestamp: int, secrets: list[WebhookSecret]) -> str:
    body = json.dumps({"type": "order.paid", "data": {"order": "o-1"}}).encode()
    headers = sign(msg_id, timestamp, body, secrets)
    # A sender posts through the SSRF-safe client; the allow-list lets this local demo through.
    async with safe_client(SsrfPolicy(allow=["127.0.0.1"])) as client:
        response = await client.post(url, content=body, headers=headers)
    return f"{response.status_code} {response.json()}"


async def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 (uvicorn.Server has no "started" event)
            await asyncio.sleep(0.01)

    now = int(time.time())
    print("delivered:", await send(url, "msg_1", now, [RECEIVER_SECRET]))
    print("retried:", await send(url, "msg_1", now, [RECEIVER_SECRET]))
    print("forged:", await send(url, "msg_2", now, [WebhookSecret.generate()]))
    print("stale:", await send(url, "msg_3", now - 600, [RECEIVER_SECRET]))

    # The sender rotates: for 24 h it signs with the new and the old secret, so this receiver,
    # still holding the old one, keeps verifying until it switches over.
    ring = SecretRing(RECEIVER_SECRET).rotate(WebhookSecret.generate())
    active = ring.active(datetime.now(UTC))
    print("during rotation:", await send(url, "msg_4", now, active))

    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main())
