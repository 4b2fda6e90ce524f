"""``tether status``: how much is waiting, in flight, retrying and dead, and how fast it moves."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from tether.commands import common
from tether.commands.backends import Snapshot, open_admin, parse_tenant
from tether.config import Database


@dataclass(frozen=True, slots=True)
class Rates:
    produced: float
    delivered: float


def rates(first: Snapshot, second: Snapshot) -> Rates | None:
    """Events per second between two snapshots.

    Published rows are usually deleted, so deliveries are inferred: every event produced
    (the seq counter moved) either is still live, went dead, or was delivered. None when a
    snapshot could not read the counter (one tenant, or a role under row-level security).
    """
    seconds = second.taken_at - first.taken_at
    if seconds <= 0 or first.last_seq is None or second.last_seq is None:
        return None
    produced = second.last_seq - first.last_seq
    delivered = produced - (second.live - first.live) - (second.dead - first.dead)
    return Rates(produced / seconds, max(0, delivered) / seconds)


def format_age(age: timedelta | None) -> str:
    if age is None:
        return "-"
    seconds = age.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


async def _measure(
    db: Database, window: float, tenant: str | None = None
) -> tuple[Snapshot, Rates | None]:
    async with open_admin(db, tenant) as admin:
        first = await admin.snapshot()
        # Rates come from a counter of every tenant: none for one tenant, nor for a role that
        # row-level security limits (or that may not read the counter).
        if window <= 0 or tenant is not None or first.last_seq is None:
            return first, None
        await asyncio.sleep(window)  # a measurement interval, not a wait for a condition
        second = await admin.snapshot()
        return second, rates(first, second)


def as_dict(snap: Snapshot, speed: Rates | None) -> dict[str, Any]:
    age = snap.oldest_pending_age
    return {
        "pending": snap.pending,
        "in_flight": snap.in_flight,
        "retrying": snap.retrying,
        "dead": snap.dead,
        "done": snap.done,
        "oldest_pending_age_seconds": None if age is None else round(age.total_seconds(), 3),
        "produced_per_second": None if speed is None else round(speed.produced, 1),
        "delivered_per_second": None if speed is None else round(speed.delivered, 1),
    }


def render(snap: Snapshot, speed: Rates | None, where: str) -> Table:
    table = Table(show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    table.add_row("pending", f"{snap.pending:,}")
    table.add_row("in flight", f"{snap.in_flight:,}")
    table.add_row("retrying", f"{snap.retrying:,}")
    table.add_row("dead", f"[red]{snap.dead:,}[/]" if snap.dead else "0")
    table.add_row("oldest pending", format_age(snap.oldest_pending_age))
    table.add_row("produced/s", "-" if speed is None else f"{speed.produced:,.1f}")
    table.add_row("delivered/s", "-" if speed is None else f"{speed.delivered:,.1f}")
    return table


def status(
    *,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    window: Annotated[
        float,
        typer.Option(
            "--window",
            min=0.0,
            max=60.0,
            help="Seconds between the two readings that give the rates (0: skip rates).",
        ),
    ] = 1.0,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            help="Count one tenant's events only, on a connection scoped to it (no rates).",
        ),
    ] = None,
) -> None:
    """Pending, in flight, retrying and dead events, oldest pending age, and throughput.

    "retrying" counts pending events that failed before (including events waiting out a sink
    outage). Rates are measured over --window seconds.
    """
    scope = parse_tenant(tenant)
    cfg = common.settings(config, {"database_url": (database_url, "--database-url")})
    db = common.database(cfg)
    with common.errors_handled(db.url):
        snap, speed = common.run(_measure(db, window, scope))
    if as_json:
        common.out.print_json(json.dumps(as_dict(snap, speed)))
    else:
        common.out.print(f"tether outbox · {db.masked}", soft_wrap=True, markup=False)
        common.out.print(render(snap, speed, db.masked))
