"""``tether worker``: run background jobs (``tether.jobs``) until SIGTERM or SIGINT.

The jobs are the ``@job`` functions of the modules named with ``--app`` (imported, so their
decorators register them). On SIGTERM the worker stops claiming, gives running jobs
``--grace`` seconds, then releases the rest with no attempt spent, and exits 0.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any

import typer

from tether.commands import common, heartbeat
from tether.config import Database

log = logging.getLogger("tether.cli.worker")

AppOption = Annotated[
    list[str],
    typer.Option(
        "--app",
        help="Module that declares the jobs (repeat for several); module:attribute names a "
        "JobRegistry other than the default one.",
        show_default=False,
    ),
]
QueueOption = Annotated[
    list[str] | None,
    typer.Option(
        "--queue",
        help="Queue to serve, as name or name=concurrency (repeat; default: every queue of "
        "the registered jobs).",
        show_default=False,
    ),
]


def parse_queues(values: list[str] | None, concurrency: int) -> dict[str, int] | None:
    """``emails=4``, ``default`` → {"emails": 4, "default": concurrency}; exits 2 on bad input."""
    if not values:
        return None
    queues: dict[str, int] = {}
    for value in values:
        name, sep, count = value.partition("=")
        if not name or len(name) > 100 or (sep and not count.isdigit()):
            common.bad_input(f"--queue {value!r}: expected a queue name or name=concurrency")
        n = int(count) if sep else concurrency
        if n < 1 or n > 10_000:
            common.bad_input(f"--queue {value!r}: concurrency must be from 1 to 10000")
        queues[name] = n
    return queues


def load_registry(apps: list[str]) -> object:
    """Import every ``--app`` module; the registry is ``module:attribute`` or the default."""
    from tether.jobs import JobRegistry, registry

    chosen: object = registry
    for app in apps:
        module_name, _, attr = app.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # the user's module failed: say which and why
            common.bad_input(f"--app {app!r}: cannot import {module_name}: {exc}")
        if attr:
            found = getattr(module, attr, None)
            if not isinstance(found, JobRegistry):
                common.bad_input(f"--app {app!r}: {attr} is not a JobRegistry in {module_name}")
            chosen = found
    return chosen


async def serve(
    db: Database, apps: list[str], options: dict[str, object], heartbeat_s: float = 10.0
) -> None:
    from tether.jobs import JobRegistry, Jobs, JobStore, JobWorker

    registry = load_registry(apps)
    assert isinstance(registry, JobRegistry)
    if not registry.names:
        common.bad_input(f"no jobs registered by {', '.join(apps)}: decorate functions with @job")
    # What is loaded by now (Tether, the app's modules) lives as long as the process: frozen,
    # the collector's full passes skip it. Each pass walked all of it while jobs waited (17-45
    # ms, about one per 20,000 short jobs run 200 at a time; under 1 ms frozen).
    gc.freeze()
    channels = options.get("alert_channels") or []
    assert isinstance(channels, list)
    queues = options.pop("queues")
    concurrency = int(options.pop("concurrency"))  # type: ignore[call-overload]
    total = sum(queues.values()) if isinstance(queues, dict) else concurrency * 4
    # A connection per running transactional job, the two claim/settle lanes, heartbeats,
    # recovery and schedules.
    store = await JobStore.connect(db.url, max_size=min(total + 6, 60))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stopper(stop, sig))
    try:
        async with heartbeat.runner_registry(db, heartbeat_s) as runners:
            worker = JobWorker(
                Jobs(store, registry),
                queues=queues,  # type: ignore[arg-type]
                concurrency=concurrency,
                registry=runners,
                registry_interval_s=heartbeat_s or 10.0,
                **options,  # type: ignore[arg-type]
            )
            print(f"worker {worker.name} serving {worker.queues}", file=sys.stderr, flush=True)
            await worker.run(stop)
        stats = worker.stats
        print(
            f"worker stopped: {stats.completed} done, {stats.failed} retried, {stats.dead} dead, "
            f"{stats.released} released, {stats.recovered} recovered",
            file=sys.stderr,
        )
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for channel in channels:
            await channel.close()
        await store.close()


def run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """On uvloop when installed (the ``fast`` extra): its C event loop spends about 15% less
    CPU per job than asyncio's in a batched drain of short jobs."""
    try:
        import uvloop
    except ImportError:
        common.run(coro)
        return
    uvloop.run(coro)


def _stopper(stop: asyncio.Event, sig: signal.Signals) -> Callable[[], None]:
    def handler() -> None:
        log.info("%s received: finishing running jobs", sig.name)
        stop.set()

    return handler


def worker(
    *,
    app: AppOption,
    queue: QueueOption = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=10_000, help="Jobs at once per queue.")
    ] = 10,
    stale_after: Annotated[
        float,
        typer.Option(
            "--stale-after",
            min=1,
            help="Seconds without a heartbeat before a running job is recovered.",
        ),
    ] = 600,
    grace: Annotated[
        float,
        typer.Option("--grace", min=0, help="Seconds running jobs get to finish on SIGTERM."),
    ] = 30,
    alert_threshold: Annotated[
        int,
        typer.Option("--alert-threshold", min=0, help="Recovered jobs a day before an alert."),
    ] = 5,
    schedules: Annotated[
        bool, typer.Option("--schedules/--no-schedules", help="Fire cron schedules.")
    ] = True,
    slack_webhook_url: common.AlertSlackOption = None,
    webhook_url: common.AlertWebhookOption = None,
    webhook_secret: common.AlertSecretOption = None,
    allow: common.AlertAllowOption = None,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, ...")] = "INFO",
    name: heartbeat.RunnerNameOption = None,
    heartbeat_s: heartbeat.HeartbeatOption = 10.0,
) -> None:
    """Run background jobs (tether.jobs) until SIGTERM/SIGINT; logs to stderr."""
    cfg = common.settings(config, {"database_url": (database_url, "--database-url")})
    db = common.database(cfg)
    heartbeat_s = heartbeat.checked_heartbeat(heartbeat_s)
    if db.kind != "postgres":
        common.bad_input("tether worker needs PostgreSQL: jobs live in tether_jobs there")
    if level := logging.getLevelName(log_level.upper()):
        if not isinstance(level, int):
            common.bad_input(f"--log-level {log_level!r}: use DEBUG, INFO, WARNING or ERROR")
        logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(message)s")
    channels: list[object] = []
    if slack_webhook_url or webhook_url or webhook_secret:
        # The dead-letter monitor's channels, built and checked the same way.
        from tether.commands.monitor import _channels
        from tether.core.errors import ConfigError

        try:
            channels = list(
                _channels(slack_webhook_url, webhook_url, webhook_secret or [], allow or [])
            )
        except ConfigError as exc:
            common.bad_input(str(exc))
    options: dict[str, object] = {
        "alert_channels": channels,
        "queues": parse_queues(queue, concurrency),
        "concurrency": concurrency,
        "stale_after": timedelta(seconds=stale_after),
        "grace": timedelta(seconds=grace),
        "recovery_alert_threshold": alert_threshold,
        "schedules": schedules,
        # Its name in claimed jobs and in the runner registry.
        "name": name,
    }
    with common.errors_handled(db.url):
        run_loop(serve(db, app, options, heartbeat_s))
