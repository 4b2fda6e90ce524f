"""``tether webhooks``: endpoints, the delivery log, replay, recovery, and the dispatcher.

Every endpoint and log command works in one tenant (``--tenant``; none: the application's own
endpoints). ``run`` serves every tenant: SIGTERM or SIGINT lets the requests in flight finish
and settles them before it exits. Secrets are printed once, by ``add`` and ``rotate``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import typer

from tether.commands import breakers, common, heartbeat
from tether.commands.backends import parse_tenant, tenant_session
from tether.commands.dlq import age, parse_when

app = typer.Typer(help="Outgoing webhooks: endpoints, deliveries, the dispatcher.",
                  no_args_is_help=True)  # fmt: skip
endpoints = typer.Typer(help="Register, change, rotate and delete endpoints.", no_args_is_help=True)
app.add_typer(endpoints, name="endpoints")
T = TypeVar("T")

TenantOpt = Annotated[str | None, typer.Option("--tenant", help="Tenant id (none: untenanted).")]
AllowOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow",
        help="Host or CIDR the SSRF guard lets through (repeat); for private deployments/tests.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


def _id(text: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        common.bad_input(f"{what} {text!r} is not an id (a UUID)")


def _headers(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep:
            common.bad_input(f"--header {pair!r}: use NAME=VALUE")
        out[name.strip()] = value
    return out


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        common.out.print_json(json.dumps(data, default=str))
        return
    rows = data if isinstance(data, list) else [data]
    for row in rows:
        common.out.print(" ".join(f"{k}={v}" for k, v in row.items()), soft_wrap=True)


@asynccontextmanager
async def _opened(
    config: Any, database_url: str | None, allow: list[str] | None, tenant: str | None = None
) -> AsyncIterator[Any]:
    import asyncpg

    from tether.net import SsrfPolicy
    from tether.webhooks.deliveries import DeliveryLog
    from tether.webhooks.store import EndpointStore

    cfg = common.settings(config, {"database_url": (database_url, "--database-url")})
    db = common.database(cfg)
    if db.kind != "postgres":
        common.bad_input("webhooks need PostgreSQL: set a postgresql:// database URL")
    with common.errors_handled(db.url):
        # With --tenant, every connection is scoped to it: under row-level security an
        # application role reaches that tenant's endpoints, deliveries and attempts only.
        settings = tenant_session(db, tenant)
        pool = await asyncpg.create_pool(db.url, min_size=1, max_size=4, server_settings=settings)
    try:
        ssrf = SsrfPolicy(allow=allow or ())
        yield db, pool, EndpointStore(pool, ssrf=ssrf), DeliveryLog(pool), ssrf
    finally:
        await pool.close()


def _run(
    config: Any, database_url: str | None, allow: list[str] | None,
    action: Callable[[Any, Any, Any], Awaitable[T]], *, tenant: str | None = None,
) -> T:  # fmt: skip
    from tether.core.errors import NotFoundError
    from tether.webhooks.model import WebhookConfigError

    async def go() -> T:
        async with _opened(config, database_url, allow, tenant) as (db, _, store, log, _ssrf):
            with common.errors_handled(db.url):
                try:
                    return await action(store, log, db)
                except WebhookConfigError as exc:
                    common.bad_input(str(exc))
                except NotFoundError as exc:
                    common.fail(str(exc))

    return common.run(go())


@endpoints.command("add")
def add(  # noqa: PLR0917 (one parameter per flag)
    url: str,
    tenant: TenantOpt = None,
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", help="Event type, Prefix*, or *.")
    ] = None,
    priority: Annotated[str, typer.Option(help="high, medium or low.")] = "medium",
    description: str = "",
    header: Annotated[list[str] | None, typer.Option(help="NAME=VALUE (repeat).")] = None,
    rate_limit: Annotated[float | None, typer.Option(help="Requests per second at most.")] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at most.")] = 10,
    allow: AllowOpt = None,
    as_json: JsonOpt = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Register an endpoint; prints its id and its secret (shown this once)."""
    from tether.webhooks.model import EndpointSettings, WebhookConfigError

    who = parse_tenant(tenant)
    try:
        settings = EndpointSettings(
            url, tuple(filter_ or ["*"]), description, True, priority,  # type: ignore[arg-type]
            rate_limit, concurrency, _headers(header),
        )  # fmt: skip
    except WebhookConfigError as exc:
        common.bad_input(str(exc))

    async def act(store: Any, _log: Any, _db: Any) -> dict[str, Any]:
        endpoint = await store.create(who, settings)
        return {**endpoint.public(), "secret": str(endpoint.secrets.current)}

    _print(_run(config, database_url, allow, act, tenant=who), as_json)


@endpoints.command("list")
def list_(
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """The tenant's endpoints (secrets as fingerprints)."""
    who = parse_tenant(tenant)

    async def act(store: Any, _log: Any, _db: Any) -> list[dict[str, Any]]:
        return [e.public() for e in await store.list(who, limit=1000)]

    _print(_run(config, database_url, None, act, tenant=who), as_json)


@endpoints.command("update")
def update(  # noqa: PLR0917 (one parameter per flag)
    endpoint_id: str,
    tenant: TenantOpt = None,
    url: Annotated[str | None, typer.Option()] = None,
    enable: Annotated[bool | None, typer.Option("--enable/--disable")] = None,
    filter_: Annotated[list[str] | None, typer.Option("--filter")] = None,
    priority: Annotated[str | None, typer.Option()] = None,
    concurrency: Annotated[int | None, typer.Option()] = None,
    allow: AllowOpt = None,
    as_json: JsonOpt = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Change an endpoint; --enable clears its failure clock (then `recover` its deliveries)."""
    who, eid = parse_tenant(tenant), _id(endpoint_id, "endpoint")
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "url": url, "enabled": enable, "priority": priority, "concurrency": concurrency,
            "filters": None if filter_ is None else tuple(filter_),
        }.items()
        if v is not None
    }  # fmt: skip

    async def act(store: Any, _log: Any, _db: Any) -> dict[str, Any]:
        return dict((await store.update(who, eid, **changes)).public())

    _print(_run(config, database_url, allow, act, tenant=who), as_json)


@endpoints.command("rotate")
def rotate(  # noqa: PLR0917 (one parameter per flag)
    endpoint_id: str,
    tenant: TenantOpt = None,
    grace: Annotated[str, typer.Option(help="How long the old secret still signs (24h).")] = "24h",
    as_json: JsonOpt = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """A new secret (printed once); the old one signs too for --grace."""
    who, eid = parse_tenant(tenant), _id(endpoint_id, "endpoint")
    window = age(grace)
    if window is None:
        common.bad_input(f"--grace {grace!r}: use an age like 30m, 24h or 7d")

    async def act(store: Any, _log: Any, _db: Any) -> dict[str, Any]:
        endpoint = await store.rotate_secret(who, eid, grace=window)
        return {**endpoint.public(), "secret": str(endpoint.secrets.current)}

    _print(_run(config, database_url, None, act, tenant=who), as_json)


@endpoints.command("delete")
def delete(
    endpoint_id: str,
    tenant: TenantOpt = None,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Delete an endpoint with its deliveries and attempt log."""
    who, eid = parse_tenant(tenant), _id(endpoint_id, "endpoint")

    async def act(store: Any, _log: Any, _db: Any) -> None:
        await store.delete(who, eid)

    _run(config, database_url, None, act, tenant=who)
    common.out.print(f"deleted {eid}")


@app.command("deliveries")
def deliveries(  # noqa: PLR0917 (one parameter per flag)
    tenant: TenantOpt = None,
    endpoint: Annotated[str | None, typer.Option(help="Endpoint id.")] = None,
    event: Annotated[str | None, typer.Option(help="Event id.")] = None,
    state: Annotated[str | None, typer.Option(help="pending, claimed, done or dead.")] = None,
    after: Annotated[str | None, typer.Option(help="ISO time or age (2h).")] = None,
    before: Annotated[str | None, typer.Option(help="ISO time or age.")] = None,
    limit: int = 100,
    as_json: JsonOpt = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Search the tenant's deliveries."""
    from tether.webhooks.deliveries import delivery_public

    who = parse_tenant(tenant)
    eid = None if endpoint is None else _id(endpoint, "--endpoint")
    vid = None if event is None else _id(event, "--event")
    since, until = parse_when("--after", after), parse_when("--before", before)

    async def act(_store: Any, log: Any, _db: Any) -> list[dict[str, Any]]:
        found = await log.deliveries(
            who, endpoint_id=eid, event_id=vid, state=state, since=since, until=until,
            limit=limit,
        )  # fmt: skip
        return [delivery_public(i) for i in found]

    _print(_run(config, database_url, None, act, tenant=who), as_json)


@app.command("attempts")
def attempts(  # noqa: PLR0917 (one parameter per flag)
    tenant: TenantOpt = None,
    delivery: Annotated[str | None, typer.Option(help="Delivery id.")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Endpoint id.")] = None,
    outcome: Annotated[str | None, typer.Option(help="ok, retry or dead.")] = None,
    after: Annotated[str | None, typer.Option(help="ISO time or age (2h).")] = None,
    limit: int = 100,
    as_json: JsonOpt = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """The attempt log, newest first: status, latency, response snippet, error."""
    who = parse_tenant(tenant)
    did = None if delivery is None else _id(delivery, "--delivery")
    eid = None if endpoint is None else _id(endpoint, "--endpoint")
    since = parse_when("--after", after)

    async def act(_store: Any, log: Any, _db: Any) -> list[dict[str, Any]]:
        found = await log.attempts(
            who, delivery_id=did, endpoint_id=eid, outcome=outcome, since=since, limit=limit
        )
        return [a.public() for a in found]

    _print(_run(config, database_url, None, act, tenant=who), as_json)


@app.command("replay")
def replay(
    delivery_id: str,
    tenant: TenantOpt = None,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Send one done or dead delivery again (same webhook-id)."""
    who, did = parse_tenant(tenant), _id(delivery_id, "delivery")

    async def act(_store: Any, log: Any, _db: Any) -> None:
        await log.replay(who, did)

    _run(config, database_url, None, act, tenant=who)
    common.out.print(f"replaying {did}")


@app.command("recover")
def recover(
    endpoint_id: str,
    since: Annotated[str, typer.Option(help="ISO time or age (2d): dead deliveries since then.")],
    tenant: TenantOpt = None,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Replay every dead delivery of an endpoint created since --since."""
    who, eid = parse_tenant(tenant), _id(endpoint_id, "endpoint")
    when = parse_when("--since", since)
    assert when is not None

    async def act(store: Any, log: Any, _db: Any) -> int:
        await store.get(who, eid)
        return int(await log.recover(who, eid, when))

    common.out.print(f"replaying {_run(config, database_url, None, act, tenant=who)} deliveries")


@app.command("run")
def run(  # noqa: PLR0917 (one parameter per flag)
    max_in_flight: Annotated[int, typer.Option(help="Requests in flight at most.")] = 64,
    lease: Annotated[str, typer.Option(help="Lease per claimed delivery (60s).")] = "60s",
    allow: AllowOpt = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            envvar=breakers.REDIS_URL_ENV,
            help="Redis that shares each endpoint's circuit breaker among dispatchers "
            "(tether.guard.RedisBreakerStore). Without it each process keeps its own.",
            show_default=False,
        ),
    ] = None,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
    name: heartbeat.RunnerNameOption = None,
    heartbeat_s: heartbeat.HeartbeatOption = 10.0,
) -> None:
    """Deliver webhooks until SIGTERM/SIGINT (then finish and settle what is in flight)."""
    from tether.core.errors import ConfigError
    from tether.webhooks.dispatcher import Dispatcher, DispatcherConfig

    held = age(lease)
    if held is None:
        common.bad_input(f"--lease {lease!r}: use an age like 30s or 2m")
    try:
        settings = DispatcherConfig(max_in_flight=max_in_flight, lease=held)
    except ConfigError as exc:
        common.bad_input(str(exc))
    breakers.check_redis_url("--redis-url", redis_url)
    heartbeat_s = heartbeat.checked_heartbeat(heartbeat_s)

    async def go() -> None:
        async with (
            _opened(config, database_url, allow) as (db, pool, _store, _log, ssrf),
            breakers.shared_breaker_store("--redis-url", redis_url, required=True) as breaker_store,
            heartbeat.runner_registry(db, heartbeat_s) as runners,
        ):
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            with common.errors_handled(db.url):
                dispatcher = Dispatcher(
                    pool,
                    config=settings,
                    ssrf=ssrf,
                    breaker_store=breaker_store,
                    name=name,
                    registry=runners,
                    registry_interval_s=heartbeat_s or 10.0,
                )
                common.err.print(f"dispatching webhooks from {db.masked}")
                try:
                    await dispatcher.run(stop)
                finally:
                    await dispatcher.close()
                common.err.print(
                    f"stopped: {dispatcher.sent} sent, {dispatcher.failed} retried, "
                    f"{dispatcher.dead} dead, {dispatcher.deferred} deferred"
                )

    common.run(go())


__all__ = ["app"]
