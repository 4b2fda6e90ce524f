"""Serve an ASGI app with uvicorn on a free loopback port inside the test's event loop."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
import uvicorn

SECRET = "realtime-tests-secret-with-32-bytes!"


def token(user: str, org: str | None = None, *, ttl: float = 3600, secret: str = SECRET) -> str:
    claims: dict[str, Any] = {"sub": user, "exp": int(time.time() + ttl)}
    if org is not None:
        claims["org"] = org
    return jwt.encode(claims, secret, algorithm="HS256")


@asynccontextmanager
async def serving(app: Any, **config: Any) -> AsyncIterator[str]:
    """Yields the ws:// URL; the server stops (bounded) when the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings: dict[str, Any] = {"log_level": "warning", "ws_ping_interval": None, "lifespan": "on"}
    settings.update(config)
    server = uvicorn.Server(uvicorn.Config(app, **settings))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{port}/connection/websocket"
    finally:
        server.should_exit = True
        try:
            async with asyncio.timeout(10):
                await task
        except TimeoutError:
            task.cancel()
        sock.close()
