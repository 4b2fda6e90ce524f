"""``tether relay``: move outbox events to the configured sinks until told to stop.

SIGTERM or SIGINT sets a stop flag; the relay finishes (publishes and settles) the batch in
hand and exits 0. Nothing is lost either way: an unsettled batch is claimed again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Annotated, TypeVar

import typer

from tether.commands import common, heartbeat
from tether.config import Database, Settings
from tether.core.errors import SinkUnavailableError
from tether.core.waiting import wait_set
from tether.ops import instruments
from tether.ops.runners import RunnerRegistry
from tether.outbox.ports import OutboxStore
from tether.outbox.relay import Relay, RelayConfig
from tether.outbox.routing import Router
from tether.sinks import registry
from tether.sinks.base import Sink

log = logging.getLogger("tether.cli.relay")
T = TypeVar("T")


def relay_config(cfg: Settings) -> RelayConfig:
    r = cfg.relay
    return RelayConfig(
        batch_size=r.batch_size,
        concurrency=r.concurrency,
        retry=r.retry_policy(),
        publish_timeout=r.publish_timeout,
        poll_interval=r.poll_interval,
        idle_poll_interval=r.idle_poll_interval,
    )


async def _patiently(
    what: str, open_: Callable[[], Awaitable[T]], stop: asyncio.Event, patient: bool
) -> T | None:
    """Open a connection. A long-running relay keeps trying while its dependency is down (it
    may start after the relay); ``--drain`` fails at once. None if stopped meanwhile."""
    failures = 0
    while True:
        try:
            return await open_()
        except (SinkUnavailableError, OSError, TimeoutError) as exc:
            if not patient:
                raise
            failures += 1
            delay = min(10.0, 0.5 * 2 ** (failures - 1))
            log.warning("%s not reachable (%s); retrying in %.1fs", what, exc, delay)
            if await wait_set(stop, delay):
                return None


async def open_sinks(cfg: Settings, stop: asyncio.Event, patient: bool) -> list[Sink] | None:
    """Open every sink the settings enable, each through its registry plugin."""
    sinks: list[Sink] = []
    try:
        for name in cfg.sinks.enabled():
            open_ = functools.partial(registry.get(name).open_sink, cfg.sinks.section(name))
            sink = await _patiently(name, open_, stop, patient)
            if sink is None:
                await _close_all(sinks)
                return None
            sinks.append(sink)
    except BaseException:
        await _close_all(sinks)
        raise
    return sinks


async def _close_all(sinks: list[Sink]) -> None:
    for sink in sinks:
        with contextlib.suppress(Exception):
            await sink.close()


async def open_store(db: Database, connections: int) -> OutboxStore:
    if db.kind == "postgres":
        from tether.outbox.store_pg import PostgresOutboxStore

        return await PostgresOutboxStore.connect(
            db.url, connections=connections, pooler_mode=db.pooler
        )
    from tether.commands.common import require_sqlite_file
    from tether.outbox.store_sqlite import SqliteOutboxStore

    require_sqlite_file(db)
    return await SqliteOutboxStore.connect(str(db.sqlite_path))


@contextlib.asynccontextmanager
async def relay_for(
    cfg: Settings,
    db: Database,
    stop: asyncio.Event,
    *,
    patient: bool,
    runners: RunnerRegistry | None = None,
    name: str | None = None,
    heartbeat_s: float = 10.0,
) -> AsyncIterator[Relay | None]:
    """``runners``: the registry the relay beats in while it runs (None: it does not register)."""
    sinks = await open_sinks(cfg, stop, patient)
    if sinks is None:
        yield None
        return
    try:
        names = [s.name for s in sinks]
        router = Router.from_mapping(cfg.routes, names) if cfg.routes else None
        store = await _patiently(
            "database", lambda: open_store(db, cfg.relay.concurrency), stop, patient
        )
        if store is None:
            yield None
            return
        try:
            yield Relay(
                store,
                sinks,
                router=router,
                config=relay_config(cfg),
                registry=runners,
                name=name,
                registry_interval_s=heartbeat_s,
            )
        finally:
            await store.close()
    finally:
        await _close_all(sinks)


def no_sink_message() -> str:
    ways = "; ".join(
        f"{p.name}: {p.enable_hint or f'[sinks.{p.name}]'}" for p in registry.plugins().values()
    )
    return (
        f"no sink configured: turn one on in [sinks.<name>] of the file, with "
        f"TETHER_SINKS_<NAME>_<KEY> variables or a flag ({ways})"
    )


async def drain(relay: Relay, stop: asyncio.Event) -> None:
    """Run batches until one comes back empty (nothing due right now) or stop is set."""
    while not stop.is_set():
        report = await relay.run_once()
        if report.claimed == 0:
            return


async def serve(
    cfg: Settings,
    db: Database,
    *,
    drain_only: bool,
    name: str | None = None,
    heartbeat_s: float = 10.0,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stopper(stop, sig))
    try:
        # A --drain run is a one-off: it does not register as a runner.
        beats = 0.0 if drain_only else heartbeat_s
        async with (
            heartbeat.runner_registry(db, beats) as runners,
            relay_for(
                cfg,
                db,
                stop,
                patient=not drain_only,
                runners=runners,
                name=name,
                heartbeat_s=beats or 10.0,
            ) as relay,
        ):
            if relay is None:
                log.info("relay stopped before it could connect")
                return
            log.info(
                "relay started: %s -> %s (batch %d, concurrency %d)",
                db.masked,
                ", ".join(cfg.sinks.enabled()),
                cfg.relay.batch_size,
                cfg.relay.concurrency,
            )
            await (drain(relay, stop) if drain_only else relay.run(stop))
            s = relay.stats
            log.info(
                "relay stopped: %d published, %d retried, %d deferred, %d dead",
                s.published, s.retried, s.deferred, s.dead,
            )  # fmt: skip
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _stopper(stop: asyncio.Event, sig: signal.Signals) -> Callable[[], None]:
    def handler() -> None:
        if not stop.is_set():
            log.info("%s received: finishing the current batch, then stopping", sig.name)
        stop.set()

    return handler


@contextlib.contextmanager
def _logging_to_stderr(level: str) -> Iterator[None]:
    """Tether's loggers write to stderr for the life of the command, then are left as found."""
    logger = logging.getLogger("tether")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def relay(
    *,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Events per batch.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="Batches in flight at once.")
    ] = None,
    nats_url: Annotated[
        str | None, typer.Option("--nats-url", help="Publish to NATS JetStream at this URL.")
    ] = None,
    log_sink: Annotated[
        bool | None,
        typer.Option("--log-sink/--no-log-sink", help="Also write each event as a JSON line."),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve Prometheus metrics on this port.")
    ] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="DEBUG, INFO, ...")] = None,
    drain_only: Annotated[
        bool, typer.Option("--drain", help="Exit once nothing is due instead of running on.")
    ] = False,
    name: heartbeat.RunnerNameOption = None,
    heartbeat_s: heartbeat.HeartbeatOption = 10.0,
) -> None:
    """Publish outbox events to the sinks (runs until SIGTERM/SIGINT; logs to stderr)."""
    cfg = common.settings(
        config,
        {
            "database_url": (database_url, "--database-url"),
            "relay.batch_size": (batch_size, "--batch-size"),
            "relay.concurrency": (concurrency, "--concurrency"),
            "sinks.nats.url": (nats_url, "--nats-url"),
            "sinks.log.enabled": (log_sink, "--log-sink"),
            "metrics_port": (metrics_port, "--metrics-port"),
            "log_level": (log_level, "--log-level"),
        },
    )
    db = common.database(cfg)
    heartbeat_s = heartbeat.checked_heartbeat(heartbeat_s)
    if not cfg.sinks.enabled():
        common.bad_input(no_sink_message())
    with _logging_to_stderr(cfg.log_level), common.errors_handled(db.url):
        if cfg.metrics_port is not None:
            try:
                instruments.serve(cfg.metrics_port)
            except OSError as exc:
                common.fail(f"cannot serve metrics on port {cfg.metrics_port}: {exc}")
            log.info("Prometheus metrics on :%d/metrics", cfg.metrics_port)
        common.run(
            serve(
                cfg,
                db,
                drain_only=drain_only,
                name=name,
                heartbeat_s=heartbeat_s,
            )
        )
