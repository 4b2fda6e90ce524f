"""``tether monitor deadletters``: alert on dead letters (Slack, a signed webhook), export gauges.

Every ``--interval`` seconds (or once with ``--once``) the monitor reads the dead count of each
``--source`` and sends the alerts :mod:`tether.ops.alerts` says are due, once per level. The
alert state lives in PostgreSQL (``tether_alert_state``), so several monitors and restarts
never repeat an alert; on SQLite it is kept in memory (one process; a restart alerts the
current levels once more). Webhook URLs and secrets are best given through the environment
(``TETHER_ALERT_*``), not flags other users can read in the process list.

Sources are found by name in :data:`SOURCES`; another part of Tether (or an application)
adds one with :func:`register_source`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Annotated, Any

import typer

from tether.commands import common
from tether.config import Database
from tether.core.errors import ConfigError
from tether.ops.alerts import AlertChannel, Rule
from tether.ops.alerts_state import AlertState, MemoryAlertState
from tether.ops.deadletters import CheckReport, DeadLetterMonitor, DeadLetterSource

log = logging.getLogger("tether.monitor")

app = typer.Typer(
    help="Watch Tether's queues: dead-letter alerts to Slack or a webhook.",
    no_args_is_help=True,
)

Opener = Callable[["Backend"], Awaitable[DeadLetterSource]]


class Backend:
    """What a source opener gets: the database and, on PostgreSQL, an asyncpg pool; on
    SQLite an open connection."""

    def __init__(self, db: Database, pool: Any = None, conn: Any = None) -> None:
        self.db = db
        self.pool = pool
        self.conn = conn


async def _outbox(backend: Backend) -> DeadLetterSource:
    from tether.ops.deadletters import OutboxDeadLetters
    from tether.outbox.table import OUTBOX

    if backend.pool is not None:
        from tether.queue.postgres import PostgresQueue

        return OutboxDeadLetters(PostgresQueue(backend.pool, spec=OUTBOX, queue=None))
    from tether.queue.sqlite import SqliteQueue

    return OutboxDeadLetters(SqliteQueue(backend.conn, spec=OUTBOX, queue=None))


def _postgres_pool(backend: Backend, name: str) -> Any:
    if backend.pool is None:
        raise ConfigError(f"--source {name}: the {name} table lives on PostgreSQL, not SQLite")
    return backend.pool


async def _jobs(backend: Backend) -> DeadLetterSource:
    from tether.jobs.monitor_source import JobsDeadLetterSource
    from tether.jobs.store import JobStore

    return JobsDeadLetterSource(JobStore(_postgres_pool(backend, "jobs")))


async def _webhooks(backend: Backend) -> DeadLetterSource:
    from tether.webhooks.monitor_source import DeliveriesDeadLetterSource

    return DeliveriesDeadLetterSource(_postgres_pool(backend, "webhooks"))


SOURCES: dict[str, Opener] = {"outbox": _outbox, "jobs": _jobs, "webhooks": _webhooks}
"""Dead-letter sources by name. Registration point: ``register_source(name, opener)``."""


def register_source(name: str, opener: Opener) -> None:
    SOURCES[name] = opener


@asynccontextmanager
async def _backend(db: Database) -> AsyncIterator[tuple[Backend, AlertState]]:
    if db.kind == "postgres":
        from tether.ops.alerts_state import PostgresAlertState
        from tether.queue.postgres import create_pool

        pool = await create_pool(db.url, min_size=1, max_size=4, pooler_mode=db.pooler)
        try:
            yield Backend(db, pool=pool), PostgresAlertState(pool)
        finally:
            await pool.close()
        return
    from tether.queue.sqlite import open_database

    common.require_sqlite_file(db)
    conn = await open_database(str(db.sqlite_path))
    try:
        log.warning("SQLite: alert state kept in memory (a restart alerts current levels again)")
        yield Backend(db, conn=conn), MemoryAlertState()
    finally:
        await conn.close()


def _channels(
    slack_url: str | None, webhook_url: str | None, secrets: list[str], allow: list[str]
) -> list[AlertChannel]:
    from tether import net
    from tether.ops.alerts_channels import SlackAlerts, WebhookAlerts
    from tether.webhooks.signing import WebhookSecret

    policy = net.SsrfPolicy(allow=allow)
    channels: list[AlertChannel] = []
    if slack_url:
        channels.append(SlackAlerts.connect(slack_url, policy=policy))
    if webhook_url:
        try:
            parsed = [WebhookSecret.parse(s) for s in secrets]
        except ValueError as exc:
            raise ConfigError(f"--webhook-secret: {exc}") from None
        channels.append(WebhookAlerts.connect(webhook_url, secrets=parsed, policy=policy))
    elif secrets:
        raise ConfigError("--webhook-secret needs --webhook-url")
    return channels


def _print(report: CheckReport, as_json: bool) -> None:
    if as_json:
        sent = [a.to_json() for a in report.sent]
        line = {"counts": report.counts, "sent": sent, "errors": report.errors}
        common.out.print(json.dumps(line), soft_wrap=True, markup=False)
        return
    for name, count in report.counts.items():
        alerts = [a for a in report.sent if a.source == name]
        told = "; ".join(f"{a.kind.value} alert sent" for a in alerts) or "no alert due"
        common.out.print(f"{name}: {count:,} dead ({told})", markup=False)
    for error in report.errors:
        common.err.print(f"warning: {error}", markup=False, soft_wrap=True)


async def _run(
    *,
    db: Database,
    names: list[str],
    channels: list[AlertChannel],
    rule: Rule,
    once: bool,
    interval: float,
    as_json: bool,
) -> int:
    async with AsyncExitStack() as stack:
        for channel in channels:
            stack.push_async_callback(channel.close)
        backend, state = await stack.enter_async_context(_backend(db))
        sources = [await SOURCES[name](backend) for name in names]
        monitor = DeadLetterMonitor(sources, channels, state, rule=rule)
        if once:
            report = await monitor.check_once()
            _print(report, as_json)
            return 1 if report.errors else 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        gauges = None
        if backend.pool is not None:  # the runner registry lives in PostgreSQL only
            gauges = asyncio.create_task(_runner_gauges(backend.pool, interval, stop))
        try:
            await monitor.run(interval, stop, on_report=lambda r: _print(r, as_json))
        finally:
            if gauges is not None:
                stop.set()
                await gauges
    return 0


async def _runner_gauges(pool: Any, interval: float, stop: asyncio.Event) -> None:
    """Export tether_runners{kind,status} at every check, until stop."""
    from tether.ops.runners import PostgresRunnerRegistry
    from tether.ops.runners.metrics import export

    registry = PostgresRunnerRegistry(pool)
    while not stop.is_set():
        try:
            await export(registry)
        except Exception as exc:  # a missing table (before 0015) or an outage: the gauge waits
            log.warning("runner gauges not exported: %s: %s", type(exc).__name__, exc)
        with suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await stop.wait()


@app.command()
def deadletters(
    *,
    once: Annotated[bool, typer.Option("--once", help="Check once and exit.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between checks.", min=1, max=86_400)
    ] = 60.0,
    threshold: Annotated[
        int, typer.Option("--threshold", help="Alert when a source's dead count reaches it.", min=1)
    ] = 100,
    on_increase: Annotated[
        bool,
        typer.Option("--increase/--no-increase", help="Also alert whenever the count grows."),
    ] = True,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", help="A source to watch (repeatable; default: outbox)."),
    ] = None,
    slack_webhook_url: common.AlertSlackOption = None,
    webhook_url: common.AlertWebhookOption = None,
    webhook_secret: common.AlertSecretOption = None,
    allow: common.AlertAllowOption = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", help="Serve the gauges for Prometheus on this port."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per check.")] = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Alert when dead letters cross --threshold or grow, once per level; reset at zero."""
    names = list(dict.fromkeys(source or ["outbox"]))
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        common.bad_input(f"--source {unknown[0]!r}: known sources are {', '.join(sorted(SOURCES))}")
    cfg = common.settings(config, {"database_url": (database_url, "--database-url")})
    db = common.database(cfg)
    try:
        channels = _channels(slack_webhook_url, webhook_url, webhook_secret or [], allow or [])
    except ConfigError as exc:
        common.bad_input(str(exc))
    if metrics_port is not None:
        from tether.ops import instruments

        try:
            instruments.serve(metrics_port)
        except (ConfigError, OSError) as exc:
            common.fail(f"cannot serve metrics on port {metrics_port}: {exc}")
    with common.errors_handled(db.url):
        code = common.run(
            _run(
                db=db,
                names=names,
                channels=channels,
                rule=Rule(threshold, on_increase),
                once=once,
                interval=interval,
                as_json=as_json,
            )
        )
    raise typer.Exit(code)
