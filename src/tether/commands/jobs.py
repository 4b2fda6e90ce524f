"""``tether jobs``: list, show, retry, cancel and purge background jobs; recoveries per day.

``--tenant`` scopes every connection of the command to one tenant (so under row-level security
an application role reaches that tenant's jobs only) and filters by it (so the owner, whom
row-level security does not limit, is limited too), as ``tether dlq --tenant`` does."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from tether.commands import common
from tether.commands.backends import parse_tenant, tenant_session
from tether.config import Database
from tether.core.errors import ConfigError
from tether.queue import Item, ItemFilter, ItemState

app = typer.Typer(help="Inspect and manage background jobs (tether.jobs).", no_args_is_help=True)
T = TypeVar("T")

StateOpt = Annotated[
    str | None, typer.Option("--state", help="pending, claimed (running), done or dead.")
]
QueueOpt = Annotated[str | None, typer.Option("--queue", help="Queue name, exactly.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Job name, exactly.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
IdArg = Annotated[str, typer.Argument(help="The job's id (a UUID).", show_default=False)]
TenantOpt = Annotated[
    str | None, typer.Option("--tenant", help="Only this tenant's jobs (docs/tenancy.md).")
]


def _db(config: Any, database_url: str | None) -> Database:
    cfg = common.settings(config, {"database_url": (database_url, "--database-url")})
    db = common.database(cfg)
    if db.kind != "postgres":
        common.bad_input("tether jobs needs PostgreSQL: jobs live in tether_jobs there")
    return db


def _id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        common.bad_input(f"{text!r} is not a job id (expected a UUID)")


def _state(text: str | None) -> ItemState | None:
    if text is None:
        return None
    try:
        return ItemState(text.lower())
    except ValueError:
        common.bad_input(f"--state {text!r}: use pending, claimed, done or dead")


def _extra(name: str | None, tenant: str | None) -> dict[str, str]:
    extra = {"name": name} if name else {}
    return {**extra, "tenant_id": tenant} if tenant is not None else extra


def _filter(
    queue: str | None, name: str | None, state: ItemState | None, tenant: str | None = None
) -> ItemFilter:
    return ItemFilter(queue=queue, state=state, extra=_extra(name, tenant))


@asynccontextmanager
async def _store(db: Database, tenant: str | None = None) -> AsyncIterator[Any]:
    from tether.jobs import JobStore

    with common.errors_handled(db.url):
        tenant_session(db, tenant)  # refuses a transaction-mode pooler with a tenant
    store = await JobStore.connect(db.url, max_size=2, tenant=tenant)
    try:
        yield store
    finally:
        await store.close()


def _run(db: Database, work: Callable[[Any], Awaitable[T]], tenant: str | None = None) -> T:
    async def go() -> T:
        async with _store(db, tenant) as store:
            return await work(store)

    with common.errors_handled(db.url):
        return common.run(go())


def _row(item: Item) -> dict[str, Any]:
    return {
        "id": str(item.id),
        "name": item.extra.get("name"),
        "tenant_id": item.extra.get("tenant_id"),
        "queue": item.queue,
        "state": item.state.value,
        "attempts": item.attempts,
        "max_attempts": item.max_attempts,
        "priority": item.extra.get("priority"),
        "available_at": item.available_at.isoformat(),
        "worker": item.worker,
        "last_error": item.last_error,
        "created_at": item.created_at.isoformat(),
        "finished_at": item.finished_at.isoformat() if item.finished_at else None,
    }


@app.command("list")
def list_jobs(
    *,
    state: StateOpt = None,
    queue: QueueOpt = None,
    name: NameOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """List jobs, oldest first, by state, queue, name and tenant."""
    who = parse_tenant(tenant)
    db = _db(config, database_url)
    f = _filter(queue, name, _state(state), who)
    items: list[Item] = _run(db, lambda s: s.engine.list(f, limit=limit), who)
    if as_json:
        for item in items:
            typer.echo(json.dumps(_row(item)))
        return
    table = Table("id", "name", "queue", "state", "attempts", "last error")
    for item in items:
        table.add_row(
            str(item.id),
            escape(str(item.extra.get("name"))),
            escape(str(item.queue)),
            item.state.value,
            f"{item.attempts}/{item.max_attempts or '-'}",
            escape((item.last_error or "")[:80]),
        )
    common.out.print(table)


@app.command()
def show(
    job_id: IdArg,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """One job with its arguments, attempts, error history and result."""
    who = parse_tenant(tenant)
    db = _db(config, database_url)
    ident = _id(job_id)

    async def get(store: Any) -> tuple[Item, Any]:
        return await _get(store, ident, who), await store.result(ident)

    item, result = _run(db, get, who)
    row = {**_row(item), "args": item.payload, "result": result,
           "errors": [{"at": e.at.isoformat(), "attempt": e.attempt, "error": e.error}
                      for e in item.errors]}  # fmt: skip
    if as_json:
        typer.echo(json.dumps(row))
        return
    for key, value in row.items():
        if key != "errors":
            typer.echo(f"{key}: {value}")
    typer.echo(f"errors ({len(item.errors)}):")
    for e in item.errors:
        typer.echo(f"  {e.at.isoformat()} attempt {e.attempt}: {e.error}")


async def _get(store: Any, ident: uuid.UUID, tenant: str | None) -> Item:
    """The job, or NotFoundError (exit 1) when it is not ``tenant``'s: the owner sees every
    tenant's jobs, so the filter is what limits it."""
    from tether.core.errors import NotFoundError

    found: list[Item] = await store.engine.list(
        ItemFilter(ids=[ident], extra=_extra(None, tenant)), limit=1
    )
    if not found:
        raise NotFoundError(f"no job {ident}" + (f" of tenant {tenant}" if tenant else ""))
    return found[0]


@app.command()
def retry(
    job_ids: Annotated[list[str] | None, typer.Argument(help="Dead jobs' ids.")] = None,
    *,
    all_dead: Annotated[
        bool, typer.Option("--all-dead", help="Every dead job (filtered).")
    ] = False,
    queue: QueueOpt = None,
    name: NameOpt = None,
    tenant: TenantOpt = None,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Put dead jobs back in their queue with fresh attempts."""
    if bool(job_ids) == all_dead:
        common.bad_input("give job ids or --all-dead (not both)")
    who = parse_tenant(tenant)
    db = _db(config, database_url)
    ids = tuple(_id(i) for i in job_ids or ())
    outcome = _run(db, lambda s: s.retry_dead(ids or None, queue=queue, name=name, tenant=who), who)
    n: int = outcome.retried
    typer.echo(f"retried {n} dead job(s)")
    for held in outcome.refused[:20]:
        by = (
            f"queued or running job {held.holder}"
            if held.by_live_job
            else f"dead job {held.holder}, retried instead"
        )
        typer.echo(
            f"not retried: job {held.id}: its de-duplication key {held.dedup_key!r} is held by "
            f"{by} (only one queued or running job per key)",
            err=True,
        )
    if len(outcome.refused) > 20:
        typer.echo(f"... and {len(outcome.refused) - 20} more not retried", err=True)
    if outcome.refused:
        common.fail(
            f"{len(outcome.refused)} dead job(s) left dead: their de-duplication keys are "
            "taken (cancel or finish the holder, then retry)"
        )
    missing = len(ids) - n - len(outcome.refused)
    if ids and missing > 0:
        common.fail(f"{missing} of the ids are not dead jobs (only dead jobs are retried)")


@app.command()
def cancel(
    job_id: IdArg,
    tenant: TenantOpt = None,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Cancel a queued or running job (a running one stops at its worker's next heartbeat)."""
    who = parse_tenant(tenant)
    db = _db(config, database_url)
    ident = _id(job_id)

    async def go(store: Any) -> bool:
        if who is not None:
            await _get(store, ident, who)  # a job's tenant never changes: check, then cancel
        return bool(await store.cancel(ident))

    if not _run(db, go, who):
        common.fail(f"job {ident} is not queued or running (unknown, or already finished)")
    typer.echo(f"cancelled {ident}")


@app.command()
def purge(
    *,
    state: Annotated[str, typer.Option("--state", help="dead or done.")] = "dead",
    queue: QueueOpt = None,
    name: NameOpt = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Only finished before this age: 7d, 12h.")
    ] = None,
    yes: YesOpt = False,
    tenant: TenantOpt = None,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Delete finished (dead or done) jobs."""
    who = parse_tenant(tenant)
    chosen = _state(state)
    if chosen not in (ItemState.DEAD, ItemState.DONE):
        common.bad_input("--state: purge removes dead or done jobs only")
    assert chosen is not None
    age = None
    if older_than is not None:
        from tether.commands.dlq import age as parse_age

        age = parse_age(older_than)
        if age is None:
            common.bad_input(f"--older-than {older_than!r}: use an age such as 45s, 30m, 12h, 7d")
    db = _db(config, database_url)
    f = _filter(queue, name, chosen, who)
    if not yes:
        n = _run(db, lambda s: s.engine.count(f), who)
        typer.confirm(f"delete {n} {chosen.value} job(s)?", abort=True)

    async def go(store: Any) -> int:
        if age is not None:
            return int(await store.engine.sweep(age, states=(chosen,), filter=f))
        return int(await store.engine.purge(f))

    typer.echo(f"purged {_run(db, go, who)} job(s)")


@app.command()
def recoveries(
    days: Annotated[int, typer.Option("--days", min=1, max=3650)] = 7,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Jobs recovered from stale state (no worker heartbeat), per day and queue."""
    db = _db(config, database_url)
    since = (datetime.now(UTC) - timedelta(days=days - 1)).date()
    rows = _run(db, lambda s: s.recoveries(since))
    if not rows:
        typer.echo(f"no recovered jobs since {since}")
    for day, queue, count in rows:
        typer.echo(f"{day} {queue} {count}")


@app.command()
def handoff(
    *,
    queue: Annotated[
        list[str],
        typer.Option("--queue", help="Hand-off queue (repeat for several).", show_default=False),
    ],
    sink: Annotated[
        str,
        typer.Option(
            "--sink", help="The sink to publish to ([sinks.<name>] settings).", show_default=False
        ),
    ],
    app_: Annotated[
        list[str] | None,
        typer.Option(
            "--app", help="Module declaring the jobs (their retry backoff).", show_default=False
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=10_000)] = 100,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            min=1,
            help="Seconds a claim holds without a heartbeat "
            "(the runner heartbeats every lease/3, at most 5 s).",
        ),
    ] = 60,
    unordered: Annotated[
        bool,
        typer.Option(
            "--unordered",
            help="Each job its own partition key (not the queue): one call per batch, no order.",
        ),
    ] = False,
    drain: Annotated[
        bool, typer.Option("--drain", help="Hand off what is due, then exit (broker down: 1).")
    ] = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Publish the jobs of hand-off queues to a broker through a sink (docs/jobs.md)."""
    import asyncio
    import signal

    from tether.commands.worker import load_registry
    from tether.jobs import JobRegistry, Jobs, JobStore
    from tether.jobs.handoff import HandoffRunner
    from tether.sinks import registry as sinks

    cfg = common.settings(config, {"database_url": (database_url, "--database-url")})
    db = common.database(cfg)
    if db.kind != "postgres":
        common.bad_input("tether jobs handoff needs PostgreSQL: jobs live in tether_jobs there")
    for name in queue:
        if not name or len(name) > 100:
            common.bad_input(f"--queue {name!r}: a queue name is 1 to 100 characters")
    try:
        plugin = sinks.get(sink)
        section = cfg.sinks.section(sink)
    except ConfigError as exc:
        common.bad_input(f"--sink: {exc}")
    if not plugin.is_enabled(section):
        common.bad_input(f"--sink {sink}: not configured. {plugin.enable_hint}".strip())
    jobs_registry = load_registry(app_ or [])
    assert isinstance(jobs_registry, JobRegistry)

    async def go() -> None:
        store = await JobStore.connect(db.url, max_size=4)
        target = None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            target = await plugin.open_sink(section)
            runner = HandoffRunner(Jobs(store, jobs_registry), target, queues=queue,
                                   batch=batch, lease=timedelta(seconds=lease),
                                   ordered=not unordered)  # fmt: skip
            if drain:
                while await runner.run_once():
                    pass
            else:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, stop.set)
                await runner.run(stop)
            st = runner.stats
            typer.echo(f"handed off {st.published}, retried {st.retried}, dead {st.dead}, "
                       f"deferred {st.deferred}", err=True)  # fmt: skip
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            if target is not None:
                await target.close()
            await store.close()

    with common.errors_handled(db.url):
        common.run(go())


__all__ = ["app"]
