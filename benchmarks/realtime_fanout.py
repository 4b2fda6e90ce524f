"""Fan-out of one publication to 1,000 and 10,000 WebSocket subscribers, and the memory of
10,000 idle connections: Tether's gateway vs broadcaster + Starlette, in the same run.

    .venv/bin/python benchmarks/realtime_fanout.py --floor    # --sizes 1000,10000 --rounds 20

Each contender runs alone in a server process (uvicorn, uvloop, one worker, in-memory
fan-out: Tether's MemoryBackplane, broadcaster's memory:// backend). ``--floor`` adds a bare
asyncio server writing one pre-built frame to every socket: what N socket writes and the
clients' reading cost on this machine, below which no server gets. Client processes open
the connections over loopback with a minimal raw WebSocket client (handshake, Tether's
connect and subscribe commands, then only timestamps on data), so the clients cost as
little as possible and the same for both. A publication carries the server's
``time.monotonic()`` at publish (CLOCK_MONOTONIC, shared by processes on Linux); each client
records its arrival. Latency = arrival - publish, over every subscriber and round. Memory
per connection = server RSS with N connected and subscribed, minus RSS before, over N.
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

SECRET = "benchmark-secret-with-at-least-32-bytes"
_T = re.compile(rb'"t":([0-9.]+)')


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# ------------------------------------------------------------------------------ servers


def _around(resource_: Any) -> Any:
    """A Starlette lifespan that enters ``resource_`` (an async context manager)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        async with resource_:
            yield

    return lifespan


def tether_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from tether.realtime import Channel, ChannelAccess, Gateway, GatewaySettings, JwtVerifier, Kind

    gateway = Gateway(
        JwtVerifier(SECRET, require_exp=False),
        access=ChannelAccess(),
        settings=GatewaySettings(ping_interval=3600, max_connections_per_user=1),
    )
    channel = Channel(Kind.ORG, "bench")

    async def publish(request: Request) -> Response:
        await gateway.publish(channel, b'{"t":%.6f}' % time.monotonic())
        return Response("ok")

    http = Starlette(
        routes=[Route("/publish", publish, methods=["POST"])], lifespan=_around(gateway)
    )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # WebSocket straight to the gateway, as `tether realtime` serves it: with no middleware
        # wrapping uvicorn's send, fan-out writes pre-built frames to the transports.
        await (gateway if scope["type"] == "websocket" else http)(scope, receive, send)

    return app


class FloorServer(asyncio.Protocol):
    """The floor: a bare asyncio server that answers the upgrade with a fixed 101, and on a
    publish writes one pre-built frame to every socket (no JSON, no WebSocket library, no
    per-connection state beyond the transport). What is left is the kernel's and the event
    loop's cost of N socket writes."""

    conns: list[Any] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if data.startswith(b"POST"):
            payload = b'{"t":%.6f}' % time.monotonic()
            frame = bytes((0x81, len(payload))) + payload
            for transport in FloorServer.conns:
                transport.write(frame)
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            self.transport.close()
        elif data.startswith(b"GET"):
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n"
                + bytes((0x81, 19))
                + b'{"subscribed":true}'
            )
            FloorServer.conns.append(self.transport)


def serve_floor(port: int) -> None:
    async def run() -> None:
        server = await asyncio.get_running_loop().create_server(
            FloorServer, "127.0.0.1", port, backlog=4096
        )
        async with server:
            await server.serve_forever()

    asyncio.run(run())


def peer_app() -> Any:
    from broadcaster import Broadcast
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    broadcast = Broadcast("memory://")

    async def publish(request: Request) -> Response:
        await broadcast.publish(channel="bench", message=f'{{"t":{time.monotonic():.6f}}}')
        return Response("ok")

    async def ws(websocket: WebSocket) -> None:  # broadcaster's documented chat pattern
        await websocket.accept()
        async with broadcast.subscribe(channel="bench") as subscriber:
            await websocket.send_text('{"subscribed":true}')
            async for event in subscriber:
                await websocket.send_text(event.message)

    return Starlette(
        routes=[Route("/publish", publish, methods=["POST"]), WebSocketRoute("/ws", ws)],
        lifespan=_around(broadcast),
    )


def serve(kind: str, port: int) -> None:
    import uvicorn

    raise_fd_limit()
    if kind == "floor":
        serve_floor(port)
        return
    app = tether_app() if kind == "tether" else peer_app()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        log_level="error",
        ws_ping_interval=None,
        backlog=4096,
        timeout_keep_alive=60,
    )


# ------------------------------------------------------------------------------ clients


def _masked(payload: bytes) -> bytes:
    mask = os.urandom(4)
    size = len(payload)
    head = (
        bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0xFE]) + size.to_bytes(2, "big")
    )
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Conn(asyncio.Protocol):
    def __init__(self, arrivals: list[float], ready: asyncio.Future[None]) -> None:
        self.arrivals = arrivals
        self.ready = ready
        self.buffer = b""
        self.upgraded = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.upgraded:
            self.buffer += data
            if b"\r\n\r\n" in self.buffer:
                self.upgraded = True
                self.buffer = self.buffer.split(b"\r\n\r\n", 1)[1]
                self.transport.write(self.after_upgrade)
            data = self.buffer
        if not self.ready.done():
            if b"subscribe" in data or b"subscribed" in data:
                self.ready.set_result(None)
            return
        for found in _T.finditer(data):
            self.arrivals.append(now - float(found.group(1)))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before subscribing"))


async def open_conn(port: int, kind: str, n: int, arrivals: list[float]) -> Any:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    path = "/ws/connection/websocket" if kind == "tether" else "/ws"
    key = base64.b64encode(os.urandom(16)).decode()
    transport, proto = await loop.create_connection(
        lambda: Conn(arrivals, ready), "127.0.0.1", port
    )
    if kind == "tether":
        import jwt

        token = jwt.encode({"sub": f"u{n}-{os.getpid()}", "org": "bench"}, SECRET)
        proto.after_upgrade = _masked(
            json.dumps({"id": 1, "connect": {"token": token}}).encode()
        ) + _masked(b'{"id":2,"subscribe":{"channel":"org:bench"}}')
    else:
        proto.after_upgrade = b""
    transport.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    async with asyncio.timeout(120):
        await ready
    return transport


async def clients(port: int, kind: str, count: int) -> None:
    """Open ``count`` subscribed connections, say READY, then on each line of stdin print the
    arrivals since the last line (JSON); exit on EOF."""
    raise_fd_limit()
    arrivals: list[float] = []
    transports = []
    for start in range(0, count, 200):
        batch = [open_conn(port, kind, n, arrivals) for n in range(start, min(count, start + 200))]
        transports.extend(await asyncio.gather(*batch))
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        print(json.dumps(arrivals), flush=True)
        arrivals.clear()
    for transport in transports:
        transport.close()


# ------------------------------------------------------------------------------ driver


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        while sock.recv(4096):
            pass


def measure(kind: str, size: int, rounds: int, procs: int) -> dict[str, Any]:
    port = free_port()
    me = [sys.executable, os.path.abspath(__file__)]
    server = subprocess.Popen([*me, "--serve", kind, "--port", str(port)])
    readers: list[subprocess.Popen[str]] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            time.sleep(0.1)
        time.sleep(0.5)
        before = rss_kib(server.pid)
        share = [size // procs + (1 if i < size % procs else 0) for i in range(procs)]
        readers = [
            subprocess.Popen(
                [*me, "--clients", str(n), "--kind", kind, "--port", str(port)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in share
        ]
        started = time.monotonic()
        for reader in readers:
            assert reader.stdout is not None
            line = reader.stdout.readline().strip()
            if line != "READY":
                raise RuntimeError(f"{kind} clients did not get ready: {line!r}")
        connect_s = time.monotonic() - started
        print(f"{kind}: {size} subscribed in {connect_s:.1f}s", file=sys.stderr, flush=True)
        time.sleep(1.0)
        after = rss_kib(server.pid)
        latencies: list[float] = []
        lost = 0
        for _ in range(rounds):
            post(port)
            time.sleep(max(0.3, size / 10_000))
            got = 0
            for reader in readers:
                assert reader.stdin is not None
                assert reader.stdout is not None
                reader.stdin.write("\n")
                reader.stdin.flush()
                arrivals = json.loads(reader.stdout.readline())
                latencies.extend(arrivals)
                got += len(arrivals)
            lost += size - got
        latencies.sort()
        ms = [x * 1000 for x in latencies]
        return {
            "kind": kind,
            "subscribers": size,
            "rounds": rounds,
            "deliveries": len(ms),
            "missing": lost,
            "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
            "max_ms": round(ms[-1], 2),
            "kib_per_conn": round((after - before) / size, 1),
            "connect_s": round(connect_s, 1),
        }
    finally:
        for reader in readers:
            with contextlib.suppress(Exception):
                assert reader.stdin is not None
                reader.stdin.close()
                reader.wait(timeout=30)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # broadcaster's loops never see a client leave
            server.kill()
            server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--client-procs", type=int, default=4)
    parser.add_argument("--floor", action="store_true", help="also run the bare-socket floor")
    parser.add_argument("--serve", choices=["tether", "peer", "floor"])
    parser.add_argument("--clients", type=int)
    parser.add_argument("--kind", choices=["tether", "peer", "floor"], default="tether")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    use_uvloop()
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.clients:
        asyncio.run(clients(args.port, args.kind, args.clients))
        return
    raise_fd_limit()
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for kind in ("tether", "peer", "floor") if args.floor else ("tether", "peer"):
            rows.append(measure(kind, size, args.rounds, args.client_procs))
    load = os.getloadavg()[0]
    print(
        f"{'server':<8} {'subs':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'KiB/conn':>9} {'missing':>8} {'connect s':>9}   (load average {load:.1f})"
    )
    for r in rows:
        print(
            f"{r['kind']:<8} {r['subscribers']:>6} {r['p50_ms']:>8} {r['p99_ms']:>8} "
            f"{r['max_ms']:>8} {r['kib_per_conn']:>9} {r['missing']:>8} {r['connect_s']:>9}"
        )
    by = {(r["kind"], r["subscribers"]): r for r in rows}
    biggest = max(int(s) for s in args.sizes.split(","))
    t, p = by[("tether", biggest)], by[("peer", biggest)]
    print(
        json.dumps(
            {
                "bench": "realtime_fanout",
                "tether": {str(r["subscribers"]): r for r in rows if r["kind"] == "tether"},
                "peer": {
                    "name": "broadcaster memory:// + Starlette",
                    **{str(r["subscribers"]): r for r in rows if r["kind"] == "peer"},
                },
                "floor": {str(r["subscribers"]): r for r in rows if r["kind"] == "floor"},
                "ratio": {
                    "p99_peer_over_tether": round(p["p99_ms"] / t["p99_ms"], 2),
                    "p50_peer_over_tether": round(p["p50_ms"] / t["p50_ms"], 2),
                    "subscribers": biggest,
                },
                "load_average": round(load, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
