"""Shared helpers for the outbox relay benchmarks: services, payloads, output.

Every benchmark creates its own PostgreSQL database (``tether_bench_<random>``) and its own
JetStream streams, and removes them afterwards, so runs never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import socket
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import nats
import orjson
from nats.aio.client import Client as NATSClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

PG_ADMIN_DSN = os.environ.get("TETHER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NATS_URL = os.environ.get("TETHER_BENCH_NATS", "nats://127.0.0.1:4222")

PAYLOAD_BYTES = 314


def use_uvloop() -> None:
    """Install uvloop's event loop policy when available (every contender gets the same loop)."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def run_id() -> str:
    return uuid.uuid4().hex[:10]


# --------------------------------------------------------------------------- Postgres


def dsn_for(dbname: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{dbname}"


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def create_database(prefix: str = "tether_bench") -> str:
    name = f"{prefix}_{run_id()}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return dsn_for(name)


async def drop_database(dsn: str) -> None:
    name = dsn.rpartition("/")[2]
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def temp_database(prefix: str = "tether_bench") -> AsyncIterator[str]:
    dsn = await create_database(prefix)
    try:
        yield dsn
    finally:
        await drop_database(dsn)


async def settle_table(dsn: str, table: str) -> None:
    """VACUUM ANALYZE a freshly loaded table and CHECKPOINT, so every contender starts alike."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"VACUUM ANALYZE {table}")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


# --------------------------------------------------------------------------- payloads


def make_payload(i: int, event_id: str) -> dict[str, Any]:
    """A realistic order event whose JSON encoding is about ``PAYLOAD_BYTES`` bytes."""
    body: dict[str, Any] = {
        "event_id": event_id,
        "order_id": 1_000_000 + i,
        "customer_id": f"cust-{i % 9973:05d}",
        "currency": "EUR",
        "total": f"{(i % 50000) / 100:.2f}",
        "items": [
            {"sku": f"SKU-{i % 997:04d}", "qty": 1 + i % 3, "price": "19.90"},
            {"sku": f"SKU-{(i * 7) % 991:04d}", "qty": 2, "price": "4.50"},
        ],
        "note": "",
    }
    pad = PAYLOAD_BYTES - len(orjson.dumps(body))
    body["note"] = "x" * max(pad, 0)
    return body


# --------------------------------------------------------------------------- NATS JetStream


async def _quiet(_: Exception) -> None:
    return None


async def nats_connect() -> NATSClient:
    return await nats.connect(
        NATS_URL,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        pending_size=64 * 1024 * 1024,
        error_cb=_quiet,
    )


async def services_fingerprint(dsn: str = PG_ADMIN_DSN) -> tuple[str, str]:
    """Identify the running NATS and Postgres server instances.

    Other engineers' chaos tests restart NATS (and may restart Postgres) on this machine; a
    round during which either restarted measured the outage, not the relay, and is repeated.
    """
    nc = await nats_connect()
    try:
        nats_id = str(nc._server_info.get("server_id", ""))
    finally:
        await nc.close()
    conn = await asyncpg.connect(dsn)
    try:
        pg_start = str(await conn.fetchval("SELECT pg_postmaster_start_time()"))
    finally:
        await conn.close()
    return nats_id, pg_start


class ServicesRestarted(RuntimeError):
    """NATS or Postgres restarted during a measurement."""


async def create_stream(name: str, subjects: Sequence[str]) -> None:
    nc = await nats_connect()
    try:
        js = nc.jetstream()
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
        await js.add_stream(
            StreamConfig(name=name, subjects=list(subjects), storage=StorageType.FILE)
        )
    finally:
        await nc.close()


async def delete_stream(name: str) -> None:
    nc = await nats_connect()
    try:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()


async def stream_count(js: Any, name: str) -> int:
    info = await js.stream_info(name)
    return int(info.state.messages)


async def collect_msg_ids(name: str, subject: str, batch: int = 5000) -> tuple[int, set[str]]:
    """Read the whole stream; return (messages read, distinct ``Nats-Msg-Id`` values)."""
    nc = await nats_connect()
    try:
        js = nc.jetstream()
        total = await stream_count(js, name)
        sub = await js.pull_subscribe(
            subject,
            stream=name,
            config=ConsumerConfig(
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.ALL,
                max_ack_pending=-1,
                inactive_threshold=60.0,
            ),
        )
        ids: set[str] = set()
        read = 0
        while read < total:
            try:
                msgs = await sub.fetch(batch=min(batch, total - read), timeout=5)
            except nats.errors.TimeoutError:
                break
            for msg in msgs:
                ids.add((msg.headers or {}).get("Nats-Msg-Id", ""))
            read += len(msgs)
        await sub.unsubscribe()
        return read, ids
    finally:
        await nc.close()


# --------------------------------------------------------------------------- statistics & output


def pct(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def median(values: Iterable[float]) -> float:
    vals = list(values)
    return statistics.median(vals) if vals else float("nan")


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"loadavg {one:.2f}/{five:.2f} on {os.cpu_count()} cores"


def tether_source() -> dict[str, str]:
    """Which Tether code ran: its path and commit (``TETHER_BENCH_COMMIT`` when the run uses
    an exported snapshot on ``PYTHONPATH``, else the repository HEAD, ``-dirty`` if
    ``src/tether`` has uncommitted changes). The tree is shared and changes during the day."""
    import subprocess

    import tether.outbox

    code = Path(tether.outbox.__file__).resolve().parent.parent
    repo = Path(__file__).resolve().parent.parent
    # Relative to the repository when the code is this checkout's: no machine paths in results.
    path = str(code.relative_to(repo)) if code.is_relative_to(repo) else "snapshot on PYTHONPATH"
    commit = os.environ.get("TETHER_BENCH_COMMIT", "")
    if not commit:
        git = ["git", "-C", str(repo)]
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "src/tether"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        commit += "-dirty" if dirty else ""
    return {"tether_commit": commit, "tether_path": path}


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        **tether_source(),
    }


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a Tether dependency
        print(title)
        print(" | ".join(columns))
        for row in rows:
            print(" | ".join(str(c) for c in row))
        return
    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(c) for c in row))
    Console(file=sys.stdout, width=160).print(table)


def emit_json(record: dict[str, Any]) -> None:
    """The one machine-readable line each benchmark ends with."""
    print(json.dumps(record, separators=(", ", ": ")), flush=True)


def now() -> float:
    return time.time()


# --------------------------------------------------------------------------- worker processes


async def run_workers(
    child: Callable[..., None],
    args: tuple[Any, ...],
    procs: int,
    readies: int,
    measure: Callable[[], Awaitable[float]],
    on_ready: Callable[[list[int]], Any] = lambda pids: None,
    on_stop: Callable[[Any], None] = lambda handle: None,
) -> tuple[float, list[Any]]:
    """Spawn ``procs`` processes running ``child(*args, ready, go, stop, out)``; once ``readies``
    ready messages are in, tell them to go and await ``measure()`` (the end time); then stop them
    and collect what each reported. Returns (seconds from go to the end, reports)."""
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    workers = [
        ctx.Process(target=child, args=(*args, ready, go, stop, out), daemon=True)
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    loop = asyncio.get_running_loop()
    for _ in range(readies):
        msg = await loop.run_in_executor(None, ready.get, True, 120)
        if msg[0] != "ready":
            raise RuntimeError(msg)
    handle = on_ready([w.pid for w in workers if w.pid])
    t0 = now()
    go.set()
    try:
        t_end = await measure()
    finally:
        stop.set()
        on_stop(handle)
        reports = []
        for _ in workers:
            with contextlib.suppress(Exception):
                reports.append(await loop.run_in_executor(None, out.get, True, 60))
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.kill()
    errors = [r for r in reports if r[0] != "ok"]
    if errors:
        print(f"  worker errors: {errors}", file=sys.stderr)
    return t_end - t0, reports


def _serve_ok(sock: socket.socket, slow_prefix: str | None, slow_seconds: float) -> None:
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        if slow_prefix is not None and scope["path"].startswith(slow_prefix):
            await asyncio.sleep(slow_seconds)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn.Config(
        app, interface="asgi3", lifespan="off", log_level="warning", access_log=False,
        loop="uvloop",
    )  # fmt: skip
    uvicorn.Server(config).run(sockets=[sock])


def start_ok_receiver(
    slow_prefix: str | None = None, slow_seconds: float = 0.0
) -> tuple[mp.Process, int]:
    """A forked uvicorn process on a free loopback port answering every POST 200 ``ok``
    (after ``slow_seconds`` when the path starts with ``slow_prefix``); returns it and the
    port once the port accepts connections (10 s at most)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    proc = mp.get_context("fork").Process(
        target=_serve_ok, args=(sock, slow_prefix, slow_seconds), daemon=True
    )
    proc.start()
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, port
