"""``tether runners``: the relays, job workers, webhook dispatchers, real-time gateways and
consumers of the runner registry, with their status, last beat and stats (PostgreSQL only:
on SQLite nothing registers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from tether.commands import common
from tether.commands.dlq import age
from tether.commands.status import format_age
from tether.config import Database
from tether.ops.runners import RunnerInfo


def _stats(info: RunnerInfo) -> str:
    return " ".join(f"{k}={v:g}" for k, v in sorted(info.stats.items()))


def _as_dict(info: RunnerInfo, now: datetime) -> dict[str, object]:
    return {
        "id": str(info.id),
        "kind": info.kind,
        "name": info.name,
        "host": info.host,
        "pid": info.pid,
        "status": info.status(now),
        "started_at": info.started_at.isoformat(),
        "heartbeat_at": info.heartbeat_at.isoformat(),
        "interval_s": info.interval_s,
        "stopped_at": info.stopped_at.isoformat() if info.stopped_at else None,
        "stats": info.stats,
    }


async def _list(db: Database, gone_for: str, kinds: list[str]) -> list[RunnerInfo]:
    import asyncpg

    from tether.ops.runners import PostgresRunnerRegistry
    from tether.store.postgres import pooler

    window = age(gone_for)
    assert window is not None  # checked by runners()
    pool = await asyncpg.create_pool(
        db.url, min_size=1, max_size=1, **pooler.connect_kwargs(db.pooler)
    )
    try:
        found = await PostgresRunnerRegistry(pool).runners(gone_for=window)
    finally:
        await pool.close()
    return [i for i in found if not kinds or i.kind in kinds]


def runners(
    *,
    gone_for: Annotated[
        str,
        typer.Option(
            "--gone-for",
            help="Also list runners stopped or lost within this age (45s, 30m, 2h, 7d).",
        ),
    ] = "24h",
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind", help="Only this kind (repeatable): relay, job-worker, ...", show_default=False
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """List the runner registry: who runs, alive, late, lost or stopped, and their stats."""
    if age(gone_for) is None:
        common.bad_input(f"--gone-for {gone_for!r}: use an age like 30m, 2h or 7d")
    cfg = common.settings(config, {"database_url": (database_url, "--database-url")})
    db = common.database(cfg)
    if db.kind != "postgres":
        common.bad_input("tether runners needs PostgreSQL: on SQLite runners do not register")
    with common.errors_handled(db.url):
        found = common.run(_list(db, gone_for, kind or []))
    now = datetime.now(UTC)
    if as_json:
        common.out.print(
            json.dumps([_as_dict(i, now) for i in found]), soft_wrap=True, markup=False
        )
        return
    if not found:
        common.out.print(f"no runner registered, stopped or lost within {gone_for}")
        return
    table = Table("kind", "name", "host:pid", "status", "last beat", "up")
    table.add_column("stats", overflow="fold")  # wrapped, never cut: the counters are the point
    for info in found:
        up = (info.stopped_at or now) - info.started_at
        table.add_row(
            info.kind,
            info.name,
            f"{info.host}:{info.pid}",
            info.status(now),
            f"{format_age(now - info.heartbeat_at)} ago",
            format_age(up),
            _stats(info),
        )
    common.out.print(table)
