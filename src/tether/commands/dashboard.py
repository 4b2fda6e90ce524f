"""``tether dashboard``: serve the admin dashboard (tether.dashboard) with uvicorn.

Secrets come from the environment or files, never from flags (the process list shows flags):
``TETHER_DASHBOARD_SECRET`` signs the session cookie; ``--users FILE`` lists login tokens as
``<user> <sha256 hex of the token>`` lines. Capabilities (ops:view, ops:replay, ops:purge) are
read from the capability store in the same database unless ``--authz-url`` names another.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from tether.commands import breakers, common
from tether.core import redact
from tether.core.errors import ConfigError

SECRET_ENV = "TETHER_DASHBOARD_SECRET"  # noqa: S105 (a variable name, not a secret)


T = TypeVar("T")


def _parsed(flag: str, path: Path, parse: Callable[[str, str], T]) -> T:
    """The file behind ``flag`` read and parsed; unreadable or malformed exits 2 naming it."""
    try:
        return parse(path.read_text(), str(path))
    except OSError as exc:
        common.bad_input(f"{flag} {path}: {exc.strerror or exc}")
    except ConfigError as exc:
        common.bad_input(str(exc))


def dashboard(
    *,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8766,
    users: Annotated[
        Path | None,
        typer.Option(
            "--users",
            envvar="TETHER_DASHBOARD_USERS",
            help="File of login tokens: '<user> <sha256 hex of token>' per line.",
            show_default=False,
        ),
    ] = None,
    authz_url: Annotated[
        str | None,
        typer.Option(
            envvar="TETHER_AUTHZ_URL",
            help="Database of the capabilities (default: the database).",
            show_default=False,
        ),
    ] = None,
    org: Annotated[
        str | None,
        typer.Option(
            help="Organization the ops:* capabilities are checked in.", show_default=False
        ),
    ] = None,
    refresh: Annotated[
        float, typer.Option(min=1.0, max=3600.0, help="Seconds between live updates.")
    ] = 5.0,
    secure_cookies: Annotated[
        bool,
        typer.Option(
            "--secure-cookies/--no-secure-cookies",
            help="Send the session cookie over HTTPS only (use behind TLS).",
        ),
    ] = False,
    webhooks_redis_url: Annotated[
        str | None,
        typer.Option(
            envvar=breakers.REDIS_URL_ENV,
            help="The Redis the webhook dispatchers share their circuit breakers through "
            "(their --redis-url): shows each endpoint's live circuit.",
            show_default=False,
        ),
    ] = None,
    consumer_dlqs: Annotated[
        Path | None,
        typer.Option(
            "--consumer-dlqs",
            envvar="TETHER_DASHBOARD_CONSUMER_DLQS",
            help="File of consumers whose broker dead letters to show: "
            "'<broker> <url> <source> <consumer>' per line.",
            show_default=False,
        ),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Check the settings and exit.")] = False,
) -> None:
    """Serve the admin dashboard: dead letters, replay and purge, health, webhooks, jobs."""
    from tether.dashboard import DashboardSettings, TokenUsers
    from tether.dashboard.broker_dlq import parse_consumer_dlqs

    cfg = common.settings(config, {"database_url": (database_url, "--database-url")})
    db = common.database(cfg)
    if db.kind != "postgres":
        common.bad_input("the dashboard needs PostgreSQL (jobs and webhooks live there only)")
    secret = os.environ.get(SECRET_ENV, "")
    if len(secret) < 32:
        common.bad_input(f"${SECRET_ENV} must hold at least 32 characters (it signs sessions)")
    tokens = None if users is None else _parsed("--users", users, TokenUsers.parse)
    breakers.check_redis_url("--webhooks-redis-url", webhooks_redis_url)
    consumers = (
        [] if consumer_dlqs is None
        else _parsed("--consumer-dlqs", consumer_dlqs, parse_consumer_dlqs)
    )  # fmt: skip
    try:
        settings = DashboardSettings(
            db.url, secret, users=tokens, org=org, refresh_seconds=refresh,
            https_only=secure_cookies, consumer_dlqs=consumers,
        )  # fmt: skip
    except ConfigError as exc:
        common.bad_input(str(exc))
    if check:
        circuits = "as the delivery table records them"
        if webhooks_redis_url:
            circuits = f"live from Redis at {redact.mask_secrets(webhooks_redis_url)}"
        common.out.print(
            f"dashboard settings are valid: http://{host}:{port}/ on {db.masked}, "
            f"{len(tokens) if tokens else 0} login token(s), {len(consumers)} consumer(s), "
            f"circuits {circuits}",
            markup=False,
        )
        return
    with common.errors_handled(db.url):
        asyncio.run(_serve(settings, authz_url or db.url, host, port, webhooks_redis_url))


async def _serve(
    settings: Any, authz_url: str, host: str, port: int, webhooks_redis_url: str | None
) -> None:
    import dataclasses

    import uvicorn

    from tether.authz import Authz, InvalidationWatcher, Registry, SqlAuthzStore, listen_dsn_of
    from tether.dashboard import OpsCap, create_dashboard

    store = SqlAuthzStore.from_url(authz_url)
    authz = Authz(store, Registry(OpsCap))
    assert authz.cache is not None
    watcher = InvalidationWatcher(store, authz.cache, listen_dsn=listen_dsn_of(store))
    flag = "--webhooks-redis-url"
    try:
        await authz.sync()
        await watcher.start()
        async with breakers.shared_breaker_store(flag, webhooks_redis_url, required=False) as bs:
            app = create_dashboard(dataclasses.replace(settings, breaker_store=bs), authz)
            config = uvicorn.Config(
                app, host=host, port=port, log_level="info", proxy_headers=False
            )
            await uvicorn.Server(config).serve()
    finally:
        await watcher.stop()
        await store.close()
