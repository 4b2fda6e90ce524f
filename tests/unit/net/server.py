"""A tiny HTTP/1.1 server on loopback for the SSRF client tests (optionally TLS).

``handle`` gets each request and writes the raw answer, so a test can answer slowly, stream a
large body or redirect. Every request is recorded with the address it arrived on.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    local: str  # the address the request arrived on


Handler = Callable[[Seen, asyncio.StreamWriter], Awaitable[None]]


async def ok(_: Seen, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


def answer(status: int, body: bytes = b"", **headers: str) -> Handler:
    async def respond(_: Seen, writer: asyncio.StreamWriter) -> None:
        head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n"
        head += "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
        writer.write(head.encode() + b"\r\n" + body)

    return respond


class Server:
    def __init__(self, handle: Handler, host: str, tls: ssl.SSLContext | None) -> None:
        self.handle = handle
        self.seen: list[Seen] = []
        self._host = host
        self._tls = tls
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        async with asyncio.timeout(5):
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    lines = head.decode("latin-1").split("\r\n")
                    method, path, _ = lines[0].split(" ", 2)
                    headers = {}
                    for line in lines[1:]:
                        if line:
                            name, _, value = line.partition(":")
                            headers[name.strip().lower()] = value.strip()
                    body = await reader.readexactly(int(headers.get("content-length", "0")))
                    local = writer.get_extra_info("sockname")[0]
                    seen = Seen(method, path, headers, body, local)
                    self.seen.append(seen)
                    await self.handle(seen, writer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(
    handle: Handler = ok, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    server = Server(handle, host, tls)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
