"""``tether dlq``: list, show, replay and purge dead-lettered outbox events.

Replay and purge run in chunks (the engine's batches), so a large dead-letter queue is worked
in short transactions while a progress bar counts them.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tether.commands import common
from tether.commands.backends import OutboxAdmin, open_admin, parse_tenant
from tether.config import Database
from tether.core.errors import NotFoundError
from tether.queue import Item, ItemFilter, ItemState

app = typer.Typer(help="Inspect, replay and purge dead-lettered events.", no_args_is_help=True)

_DEAD = (ItemState.DEAD,)
_DOING = {"replay": "replaying", "purge": "purging"}
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

TypeOpt = Annotated[str | None, typer.Option("--type", help="Event type, exactly.")]
TopicOpt = Annotated[str | None, typer.Option("--topic", help="Topic, exactly.")]
TenantOpt = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        help="Tenant id: only its events, and the connection is scoped to it (row-level "
        "security, see docs/tenancy.md).",
    ),
]
AggregateOpt = Annotated[str | None, typer.Option("--aggregate-id", help="Aggregate id.")]
ErrorOpt = Annotated[
    str | None, typer.Option("--error-contains", help="Text the last error contains.")
]
BeforeOpt = Annotated[
    str | None,
    typer.Option("--before", help="Created before: ISO time (2026-01-31T12:00Z) or age (2h, 7d)."),
]
AfterOpt = Annotated[
    str | None,
    typer.Option("--after", help="Created at or after: ISO time or age (30m = 30 minutes ago)."),
]
IdOpt = Annotated[
    list[str] | None,
    typer.Option("--id", help="Event id (repeat for several).", show_default=False),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def age(text: str) -> timedelta | None:
    """``45s``, ``30m``, ``2h``, ``7d`` as a duration; None when ``text`` is not such an age."""
    if text[:-1].isdigit() and text[-1:] in _UNITS:
        return timedelta(**{_UNITS[text[-1]]: int(text[:-1])})
    return None


def parse_when(flag: str, text: str | None, now: datetime | None = None) -> datetime | None:
    """An ISO 8601 time (UTC when it has no zone) or an age: ``45s``, ``30m``, ``2h``, ``7d``."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    ago = age(text)
    if ago is not None:
        return now - ago
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        common.bad_input(
            f"{flag} {text!r}: expected an ISO time like 2026-01-31T12:00:00Z or an age like "
            "30m, 12h, 7d"
        )
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_ids(values: list[str] | None, label: str = "--id ") -> list[uuid.UUID] | None:
    if not values:
        return None
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            common.bad_input(f"{label}{value!r} is not an event id (a UUID)")
    return ids


def build_filter(
    *,
    type: str | None,
    topic: str | None,
    tenant: str | None,
    aggregate_id: str | None,
    error: str | None,
    before: str | None,
    after: str | None,
    ids: list[str] | None,
) -> ItemFilter:
    tenant = parse_tenant(tenant)
    extra = {"type": type, "topic": topic, "tenant_id": tenant, "aggregate_id": aggregate_id}
    return ItemFilter(
        ids=parse_ids(ids),
        error=error,
        created_before=parse_when("--before", before),
        created_after=parse_when("--after", after),
        extra={k: v for k, v in extra.items() if v is not None},
    )


def _open(config: common.ConfigOption, database_url: str | None) -> Database:
    cfg = common.settings(config, {"database_url": (database_url, "--database-url")})
    return common.database(cfg)


async def _with_admin(
    db: Database, work: Callable[[OutboxAdmin], Awaitable[Any]], tenant: str | None = None
) -> Any:
    async with open_admin(db, tenant) as admin:
        return await work(admin)


def _short(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    line = text.replace("\n", " ")
    return line if len(line) <= width else line[: width - 1] + "…"


def item_dict(item: Item) -> dict[str, Any]:
    return {
        "id": str(item.id),
        **{k: v for k, v in item.extra.items()},
        "partition_key": item.partition_key,
        "state": item.state.value,
        "attempts": item.attempts,
        "created_at": item.created_at.isoformat(),
        "dead_at": item.finished_at.isoformat() if item.finished_at else None,
        "last_error": item.last_error,
        "errors": [
            {"at": e.at.isoformat(), "attempt": e.attempt, "error": e.error} for e in item.errors
        ],
        "payload": item.payload,
    }


@app.command("list")
def list_(
    *,
    type: TypeOpt = None,
    topic: TopicOpt = None,
    tenant: TenantOpt = None,
    aggregate_id: AggregateOpt = None,
    error_contains: ErrorOpt = None,
    before: BeforeOpt = None,
    after: AfterOpt = None,
    id: IdOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """List dead events, oldest first."""
    f = build_filter(
        type=type,
        topic=topic,
        tenant=tenant,
        aggregate_id=aggregate_id,
        error=error_contains,
        before=before,
        after=after,
        ids=id,
    )
    f = dataclasses.replace(f, state=ItemState.DEAD)
    db = _open(config, database_url)
    with common.errors_handled(db.url):
        items: list[Item] = common.run(
            _with_admin(db, lambda a: a.list(f, limit), f.extra.get("tenant_id"))
        )
    if as_json:
        common.out.print_json(json.dumps([item_dict(i) for i in items], default=str))
        return
    if not items:
        common.out.print("No dead events match.")
        return
    table = Table(title=f"{len(items)} dead event(s)", title_justify="left")
    for column in ("id", "type", "topic", "aggregate", "attempts", "dead at", "last error"):
        if column == "id":
            table.add_column(column, no_wrap=True, min_width=36)
        else:
            table.add_column(column, overflow="ellipsis", no_wrap=column != "last error")
    for item in items:
        cells = (
            str(item.id),
            str(item.extra.get("type", "")),
            str(item.extra.get("topic", "")),
            str(item.extra.get("aggregate_id") or ""),
            str(item.attempts),
            item.finished_at.strftime("%Y-%m-%d %H:%M:%S") if item.finished_at else "",
            _short(item.last_error),
        )
        # Event fields and error texts are data, never Rich markup.
        table.add_row(*(escape(cell) for cell in cells))
    common.out.print(table)


@app.command()
def show(
    *,
    event_id: Annotated[str, typer.Argument(help="The event id.", show_default=False)],
    tenant: TenantOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Everything about one dead event: envelope, error history and payload."""
    (parsed,) = parse_ids([event_id], label="EVENT_ID ") or []
    scope = parse_tenant(tenant)
    db = _open(config, database_url)

    async def get(admin: OutboxAdmin) -> Item:
        # Dead rows only: the outbox indexes no other row by id, so a look-up of any state
        # would read the whole table.
        item = await admin.get_dead(parsed)
        if scope is not None and item.extra.get("tenant_id") != scope:
            # A role that bypasses row-level security would see it: answer as if it were absent.
            raise NotFoundError(f"no dead item with id {parsed} in {admin.engine.spec.name}")
        return item

    with common.errors_handled(db.url):
        item: Item = common.run(_with_admin(db, get, scope))
    data = item_dict(item)
    if as_json:
        common.out.print_json(json.dumps(data, default=str))
        return
    table = Table(show_header=False, title=f"event {item.id}", title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key in ("type", "topic", "tenant_id", "aggregate_type", "aggregate_id", "state",
                "attempts", "created_at", "dead_at", "last_error"):  # fmt: skip
        table.add_row(key, "" if data.get(key) is None else escape(str(data[key])))
    common.out.print(table)
    if item.errors:
        history = Table(title="error history", title_justify="left")
        for column in ("attempt", "at", "error"):
            history.add_column(column, overflow="fold")
        for e in item.errors:
            history.add_row(str(e.attempt), e.at.isoformat(), escape(e.error))
        common.out.print(history)
    common.out.print("[bold]payload[/]")
    common.out.print_json(json.dumps(item.payload, default=str))


def _confirm(action: str, count: int, yes: bool) -> None:
    if yes:
        return
    question = f"{action.capitalize()} {count:,} dead event(s)?"
    if not common.is_interactive():
        common.bad_input(f"{question} Refusing without confirmation: pass --yes")
    typer.confirm(question, abort=True)


def _bulk(action: str, db: Database, f: ItemFilter, yes: bool, needs_confirm: bool) -> int:
    async def count(admin: OutboxAdmin) -> int:
        return await admin.count(f, _DEAD)

    with common.errors_handled(db.url):
        total: int = common.run(_with_admin(db, count, f.extra.get("tenant_id")))
    if total == 0:
        common.out.print(f"No dead events match; nothing to {action}.")
        return 0
    if needs_confirm:
        _confirm(action, total, yes)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=common.out) as progress:
        task = progress.add_task(_DOING[action], total=total)

        def advance(n: int) -> None:
            progress.advance(task, n)

        async def work(admin: OutboxAdmin) -> int:
            engine_op = admin.engine.replay if action == "replay" else admin.engine.purge
            return await engine_op(f, progress=advance)

        with common.errors_handled(db.url):
            done: int = common.run(_with_admin(db, work, f.extra.get("tenant_id")))
    return done


@app.command()
def replay(
    *,
    type: TypeOpt = None,
    topic: TopicOpt = None,
    tenant: TenantOpt = None,
    aggregate_id: AggregateOpt = None,
    error_contains: ErrorOpt = None,
    before: BeforeOpt = None,
    after: AfterOpt = None,
    id: IdOpt = None,
    yes: YesOpt = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Send matching dead events again: back to pending with attempts reset (history kept)."""
    f = build_filter(
        type=type,
        topic=topic,
        tenant=tenant,
        aggregate_id=aggregate_id,
        error=error_contains,
        before=before,
        after=after,
        ids=id,
    )
    only_ids = f.ids is not None and not (f.extra or f.error or f.created_before or f.created_after)
    n = _bulk("replay", _open(config, database_url), f, yes, needs_confirm=not only_ids)
    if n:
        common.out.print(f"Replayed {n:,} event(s); the relay will deliver them again.")


@app.command()
def purge(
    *,
    type: TypeOpt = None,
    topic: TopicOpt = None,
    tenant: TenantOpt = None,
    aggregate_id: AggregateOpt = None,
    error_contains: ErrorOpt = None,
    before: BeforeOpt = None,
    after: AfterOpt = None,
    id: IdOpt = None,
    yes: YesOpt = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Delete matching dead events for good."""
    f = build_filter(
        type=type,
        topic=topic,
        tenant=tenant,
        aggregate_id=aggregate_id,
        error=error_contains,
        before=before,
        after=after,
        ids=id,
    )
    n = _bulk("purge", _open(config, database_url), f, yes, needs_confirm=True)
    if n:
        common.out.print(f"Purged {n:,} dead event(s).")
