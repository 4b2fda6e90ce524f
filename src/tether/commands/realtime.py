"""``tether realtime``: serve the real-time gateway (WebSocket, Centrifuge protocol) with uvicorn.

Secrets come from the environment, never from flags (which other users can read in the
process list): ``TETHER_REALTIME_JWT_SECRET`` for HS256 tokens, or ``--jwt-public-key FILE``
for RS256/ES256. ``--topic name=capability`` guards a topic with a capability checked in
the authorization store at ``--authz-url`` (revocations end subscriptions within a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from tether.commands import common, heartbeat
from tether.commands.common import bad_input, errors_handled, out
from tether.config import Database

SECRET_ENV = "TETHER_REALTIME_JWT_SECRET"  # noqa: S105 (a variable name, not a secret)


def _topics(values: list[str]) -> dict[str, str]:
    topics: dict[str, str] = {}
    for value in values:
        name, sep, capability = value.partition("=")
        if not sep or not name or not capability:
            bad_input(
                f"--topic {value!r}: give name=capability, e.g. requirements=requirement:view"
            )
        topics[name] = capability
    return topics


def _verifier(
    public_key: Path | None,
    algorithms: list[str],
    org_claim: str,
    audience: str | None,
    issuer: str | None,
) -> Any:
    from tether.realtime import JwtVerifier

    secret = os.environ.get(SECRET_ENV)
    if public_key is not None and secret:
        bad_input(f"give --jwt-public-key or ${SECRET_ENV}, not both")
    if public_key is not None:
        try:
            key: str = public_key.read_text()
        except OSError as exc:
            bad_input(f"--jwt-public-key {public_key}: {exc.strerror or exc}")
        algorithms = algorithms or ["RS256"]
        if any(a.startswith("HS") for a in algorithms):
            bad_input("--jwt-public-key takes RS*/ES*/PS* algorithms; HS* needs a shared secret")
    elif secret:
        if len(secret.encode()) < 32:
            bad_input(f"${SECRET_ENV} must be at least 32 bytes for HS256")
        key = secret
        algorithms = algorithms or ["HS256"]
    else:
        bad_input(f"no token key: set ${SECRET_ENV} (HS256) or give --jwt-public-key FILE")
    try:
        return JwtVerifier(
            key, algorithms=algorithms, org_claim=org_claim, audience=audience, issuer=issuer
        )
    except ValueError as exc:
        bad_input(str(exc))


def realtime(  # noqa: PLR0917 (one parameter per flag)
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8765,
    redis_url: Annotated[
        str | None,
        typer.Option(
            envvar="TETHER_REALTIME_REDIS_URL",
            help="Redis shared by every gateway and the realtime sink (history, fan-out). "
            "Without it: one gateway, history in memory.",
            show_default=False,
        ),
    ] = None,
    prefix: Annotated[
        str, typer.Option(help="Redis key prefix (the sink's prefix).")
    ] = "tether:rt",
    history_size: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="Publications kept per channel for recovery.")
    ] = 1000,
    history_ttl: Annotated[
        int, typer.Option(min=1, help="Seconds a channel's history lives.")
    ] = 86_400,
    jwt_public_key: Annotated[
        Path | None, typer.Option(help="PEM public key for RS256/ES256 tokens.", show_default=False)
    ] = None,
    jwt_algorithm: Annotated[
        list[str],
        typer.Option(help="Accepted token algorithm (repeat for several).", show_default=False),
    ] = [],  # noqa: B006
    org_claim: Annotated[str, typer.Option(help="Token claim naming the organization.")] = "org",
    audience: Annotated[str | None, typer.Option(help="Required token audience.")] = None,
    issuer: Annotated[str | None, typer.Option(help="Required token issuer.")] = None,
    topic: Annotated[
        list[str],
        typer.Option(
            help="A topic and the capability it needs: name=capability (repeat).",
            show_default=False,
        ),
    ] = [],  # noqa: B006
    authz_url: Annotated[
        str | None,
        typer.Option(
            envvar="TETHER_AUTHZ_URL",
            help="Database of the capabilities (--topic needs it).",
            show_default=False,
        ),
    ] = None,
    ping_interval: Annotated[int, typer.Option(min=1, help="Seconds between pings.")] = 25,
    max_connections_per_user: Annotated[int, typer.Option(min=1)] = 100,
    max_channels: Annotated[int, typer.Option(min=1, help="Subscriptions per connection.")] = 128,
    check: Annotated[bool, typer.Option("--check", help="Check the settings and exit.")] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            "--db",
            help="PostgreSQL database of the runner registry, where the gateway registers and "
            "beats (default: $TETHER_DATABASE_URL; without one it does not register).",
            show_default=False,
        ),
    ] = None,
    runner_name: heartbeat.RunnerNameOption = None,
    heartbeat_s: heartbeat.HeartbeatOption = 10.0,
) -> None:
    """Serve WebSocket channels (user:<id>, org:<id>, topic:<name>) to Centrifuge clients."""
    from tether.realtime import GatewaySettings
    from tether.realtime.channels import BadChannel, check_topic

    topics = _topics(topic)
    for name in topics:
        try:
            check_topic(name)
        except BadChannel as exc:
            bad_input(f"--topic {name!r}: {exc}")
    if topics and authz_url is None:
        bad_input("--topic needs --authz-url (or $TETHER_AUTHZ_URL): capabilities live there")
    verifier = _verifier(jwt_public_key, jwt_algorithm, org_claim, audience, issuer)
    heartbeat_s = heartbeat.checked_heartbeat(heartbeat_s)
    cfg = common.settings(None, {"database_url": (database_url, "--database-url")})
    db = common.database(cfg) if cfg.database_url else None
    settings = GatewaySettings(
        ping_interval=ping_interval,
        max_channels=max_channels,
        max_connections_per_user=max_connections_per_user,
    )
    if check:
        out.print(
            f"realtime settings are valid: ws://{host}:{port}/, "
            f"{'Redis' if redis_url else 'in-memory'} backplane, {len(topics)} topic(s)"
        )
        return
    with errors_handled(authz_url):
        asyncio.run(
            _serve(
                host,
                port,
                verifier,
                settings,
                topics,
                authz_url,
                redis_url,
                prefix,
                history_size,
                history_ttl,
                db,
                runner_name,
                heartbeat_s,
            )
        )


async def _serve(  # noqa: PLR0917
    host: str,
    port: int,
    verifier: Any,
    settings: Any,
    topics: dict[str, str],
    authz_url: str | None,
    redis_url: str | None,
    prefix: str,
    history_size: int,
    history_ttl: int,
    db: Database | None = None,
    name: str | None = None,
    heartbeat_s: float = 10.0,
) -> None:
    import uvicorn

    from tether.realtime import ChannelAccess, Gateway, MemoryBackplane, RedisBackplane

    async with contextlib.AsyncExitStack() as stack:
        has = None
        if topics:
            assert authz_url is not None  # realtime() refuses topics without it
            has = await stack.enter_async_context(_authz(authz_url, set(topics.values())))
        backplane: Any = (
            RedisBackplane(
                redis_url, prefix=prefix, history_size=history_size, history_ttl=history_ttl
            )
            if redis_url
            else MemoryBackplane(history_size)
        )
        runners = None
        if db is not None:
            runners = await stack.enter_async_context(heartbeat.runner_registry(db, heartbeat_s))
        gateway = Gateway(
            verifier,
            access=ChannelAccess(dict(topics), has=has),
            backplane=backplane,
            settings=settings,
            registry=runners,
            name=name,
            registry_interval_s=heartbeat_s or 10.0,
        )
        config = uvicorn.Config(
            gateway,
            host=host,
            port=port,
            ws_ping_interval=None,
            ws_max_size=settings.max_message_bytes,
            lifespan="on",
            log_level="info",
        )
        logging.getLogger("tether.realtime").setLevel(logging.INFO)
        await uvicorn.Server(config).serve()


@contextlib.asynccontextmanager
async def _authz(url: str, capabilities: set[str]) -> Any:
    from tether.authz import Authz, InvalidationWatcher, Registry, SqlAuthzStore, listen_dsn_of

    store = SqlAuthzStore.from_url(url)
    authz = Authz(store, Registry(sorted(capabilities)))
    assert authz.cache is not None
    watcher = InvalidationWatcher(store, authz.cache, listen_dsn=listen_dsn_of(store))
    try:
        await watcher.start()
        yield authz.has
    finally:
        await watcher.stop()
        await store.close()
