"""A lean webhook receiver process for the chaos test: records, answers 200, verifies nothing.

``python -m tests.chaos.webhooks_receiver_process OUT`` listens on a free loopback port, prints
``receiver ready PORT`` and appends one JSON line per request to ``OUT``: the monotonic time it
arrived (the clock is system-wide, so the test compares it with its kill times), the three
Standard Webhooks headers and the body. The test verifies every line with ``standardwebhooks``
afterwards: verifying here, in Python, per request, made the receiver the test's bottleneck.

asyncio streams and ``h11`` only (no ASGI layer): a request costs a parse, a line and a reply.
A request cut off by a killed sender is not recorded: it never fully arrived.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import IO

import h11
import orjson

_HEADERS = (b"webhook-id", b"webhook-timestamp", b"webhook-signature")
_REPLY = [(b"content-type", b"text/plain"), (b"content-length", b"2")]


async def serve(
    conn_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, out: IO[bytes]
) -> None:
    conn = h11.Connection(h11.SERVER)
    headers: dict[str, str] = {}
    body: list[bytes] = []
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(conn_reader.read(65536), 60)
                conn.receive_data(data)
                if not data:
                    return
                continue
            if isinstance(event, h11.Request):
                headers = {
                    k.decode(): v.decode() for k, v in event.headers if k.lower() in _HEADERS
                }
                body = []
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                record = {
                    "at": time.monotonic(),
                    "headers": headers,
                    "body": b"".join(body).decode(),
                }
                out.write(orjson.dumps(record) + b"\n")
                out.flush()  # the test counts the lines to time its kills
                reply = conn.send(h11.Response(status_code=200, headers=_REPLY))
                writer.write(
                    reply + conn.send(h11.Data(data=b"ok")) + conn.send(h11.EndOfMessage())
                )
                await writer.drain()
                conn.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                return
    except (h11.RemoteProtocolError, ConnectionError, TimeoutError):
        return
    finally:
        writer.close()


async def main(path: str) -> None:
    with open(path, "ab") as out:
        server = await asyncio.start_server(
            lambda r, w: serve(r, w, out), "127.0.0.1", 0, backlog=512
        )
        port = server.sockets[0].getsockname()[1]
        print(f"receiver ready {port}", flush=True)
        async with server:
            await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop  # the "fast" extra, as a deployment would run it
    except ImportError:
        asyncio.run(main(sys.argv[1]))
    else:
        uvloop.run(main(sys.argv[1]))
