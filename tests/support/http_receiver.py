"""A real HTTP receiver on loopback for sink and alert tests: uvicorn serving a bare ASGI app
in the test's own event loop. It records every request and answers what ``respond`` says."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; the last value of a repeated header
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


Responder = Callable[[Received], Answer]


class LoopbackServer:
    """uvicorn serving a bare ASGI ``app`` on a free 127.0.0.1 port, in the caller's loop.

    The socket is bound up front so ``port`` is known before ``start``."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app, interface="asgi3", lifespan="off", log_level="warning", ws="none", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        async with asyncio.timeout(10):
            while not self._server.started:
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            async with asyncio.timeout(10):
                await self._task
        self._sock.close()


async def read_body(receive: Any) -> bytes | None:
    """The whole request body, or None when the client went away before sending it all."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def header_dict(scope: dict[str, Any]) -> dict[str, str]:
    """Lower-case header names to values; a repeated header keeps its last value."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


class Receiver:
    """``requests`` holds every request answered 2xx in arrival order, ``rejected`` the others;
    ``respond`` decides each answer (200 ``ok`` by default) and may be replaced while the
    receiver runs."""

    def __init__(self, respond: Responder | None = None) -> None:
        self.requests: list[Received] = []  # answered 2xx
        self.rejected: list[Received] = []  # answered anything else
        self.respond: Responder = respond or (lambda _: Answer())
        self._arrived = asyncio.Condition()
        self._server = LoopbackServer(self._app)
        self.port = self._server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_for(self, n: int, timeout: float = 20.0) -> list[Received]:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= n)
        return list(self.requests)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if body is None:
            return
        request = Received(scope["method"], scope["path"], header_dict(scope), body)
        answer = self.respond(request)
        if 200 <= answer.status < 300:
            async with self._arrived:
                self.requests.append(request)
                self._arrived.notify_all()
        else:
            self.rejected.append(request)
        raw = [(k.encode(), v.encode()) for k, v in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": raw})
        await send({"type": "http.response.body", "body": answer.body})


@asynccontextmanager
async def receiving(respond: Responder | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver(respond)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()
