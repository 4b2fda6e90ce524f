"""``tether retention``: forget old published rows, dead letters and idempotency keys.

One pass of :func:`tether.outbox.retention.run_once` against the configured database, or with
``--dry-run`` the counts it would remove (read-only queries, nothing deleted). With
``--tenant`` only that tenant's rows go, on connections scoped to it as ``tether dlq`` and
``tether status`` do, so an application role under row-level security works too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from tether.commands import common
from tether.commands.backends import parse_tenant, tenant_session
from tether.commands.dlq import age
from tether.config import Database
from tether.outbox import partitions
from tether.outbox.retention import RetentionPolicy, RetentionReport, run_once
from tether.outbox.table import OUTBOX

_NEVER = "never"

# Dry-run counts: the rows the sweeps would delete (a NULL cutoff counts none). An event's
# tenant_id may be NULL, so no tenant is an explicit OR, not a COALESCE.
_PG_COUNT = """
SELECT count(*) FILTER (WHERE state = 'done' AND finished_at < $1) AS published,
       count(*) FILTER (WHERE state = 'dead' AND finished_at < $2) AS dead
FROM tether_outbox WHERE ($3::text IS NULL OR tenant_id = $3)"""
_PG_KEYS = """SELECT count(*) FROM tether_outbox_keys
WHERE created_at < $1 AND tenant_id = COALESCE($2::text, tenant_id)"""
# Whole months ending by the cut-off are dropped, and default-partition rows before it.
_PG_ARCHIVE = f"""SELECT (SELECT count(*) FROM {partitions.ARCHIVE} WHERE finished_at < $1)
     + (SELECT count(*) FROM {partitions.DEFAULT} WHERE finished_at >= $1 AND finished_at < $2)"""
_SQLITE_COUNT = """
SELECT coalesce(sum(state = 'done' AND finished_at < :published), 0) AS published,
       coalesce(sum(state = 'dead' AND finished_at < :dead), 0) AS dead
FROM tether_outbox WHERE (:tenant IS NULL OR tenant_id = :tenant)"""
_SQLITE_KEYS = """SELECT count(*) FROM tether_outbox_keys
WHERE created_at < :before AND tenant_id = coalesce(:tenant, tenant_id)"""


def parse_age(flag: str, text: str, *, never: bool = False) -> timedelta | None:
    """An age in the units of ``tether dlq --before``: ``45s``, ``30m``, ``2h``, ``7d``;
    ``never`` (where allowed) means keep forever. Exits 2 naming ``flag`` otherwise."""
    value = text.strip().lower()
    if never and value == _NEVER:
        return None
    ago = age(value)
    if ago is None:
        also = " or never" if never else ""
        common.bad_input(f"{flag} {text!r}: expected an age like 45s, 30m, 12h, 7d{also}")
    return ago


@dataclass(frozen=True, slots=True)
class Outcome:
    report: RetentionReport
    dead_kept: bool  # --dead never: dead letters are not swept at all
    dry_run: bool
    tenant: str | None

    def as_dict(self) -> dict[str, Any]:
        r = self.report
        return {
            "dry_run": self.dry_run,
            "tenant": self.tenant,
            "published": r.published,
            "dead": None if self.dead_kept else r.dead,
            "idempotency_keys": r.idempotency_keys,
            "archived_months": list(r.archived_months),
        }

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        r = self.report
        dead = "kept (--dead never)" if self.dead_kept else f"{r.dead:,}"
        scope = f" (tenant {self.tenant})" if self.tenant is not None else ""
        out = [
            f"retention{scope}: {verb}",
            f"  published        {r.published:,}",
            f"  dead             {dead}",
            f"  idempotency keys {r.idempotency_keys:,}",
        ]
        if r.archived_months:
            out.append(f"  archive months   {', '.join(r.archived_months)}")
        return out


async def _postgres(
    db: Database, policy: RetentionPolicy, tenant: str | None, archive: bool, dry_run: bool
) -> RetentionReport:
    from tether.queue.postgres import PostgresQueue, create_pool

    pool = await create_pool(
        db.url,
        min_size=1,
        max_size=2,
        pooler_mode=db.pooler,
        settings=tenant_session(db, tenant),
    )
    try:
        async with pool.acquire() as conn:
            if dry_run:
                return await _pg_counts(conn, policy, tenant, archive)
            admin = PostgresQueue(pool, spec=OUTBOX, queue=None)
            async with conn.transaction():
                return await run_once(admin, conn, policy, archive=archive, tenant=tenant)
    finally:
        await pool.close()


async def _pg_counts(
    conn: Any, policy: RetentionPolicy, tenant: str | None, archive: bool
) -> RetentionReport:
    now = datetime.now(UTC)
    published_cut = now - policy.published
    dead_cut = None if policy.dead is None else now - policy.dead
    row = await conn.fetchrow(_PG_COUNT, published_cut, dead_cut, tenant)
    keys = await conn.fetchval(_PG_KEYS, now - policy.idempotency_keys, tenant)
    published = int(row["published"])
    months: tuple[str, ...] = ()
    if archive:
        first = partitions.month_start(published_cut)
        published += int(await conn.fetchval(_PG_ARCHIVE, first, published_cut))
        have = await partitions.existing_partitions(conn)
        months = tuple(
            sorted(n for n, s in have.items() if partitions.add_months(s, 1) <= published_cut)
        )
    return RetentionReport(published, int(row["dead"]), int(keys), months)


async def _sqlite(
    db: Database, policy: RetentionPolicy, tenant: str | None, dry_run: bool
) -> RetentionReport:
    from tether.queue.sqlite import SqliteQueue, open_database, to_sqlite

    common.require_sqlite_file(db)
    conn = await open_database(str(db.sqlite_path))
    try:
        if not dry_run:
            # Autocommit connection: each sweep batch commits by itself, as the relay's do.
            admin = SqliteQueue(conn, spec=OUTBOX, queue=None)
            return await run_once(admin, conn, policy, tenant=tenant)
        now = datetime.now(UTC)
        dead_cut = None if policy.dead is None else to_sqlite(now - policy.dead)
        values = {"published": to_sqlite(now - policy.published), "dead": dead_cut}
        rows = list(await conn.execute_fetchall(_SQLITE_COUNT, {**values, "tenant": tenant}))
        before = to_sqlite(now - policy.idempotency_keys)
        keys = list(await conn.execute_fetchall(_SQLITE_KEYS, {"before": before, "tenant": tenant}))
        return RetentionReport(int(rows[0][0]), int(rows[0][1]), int(keys[0][0]))
    finally:
        await conn.close()


def retention(
    *,
    published: Annotated[
        str, typer.Option("--published", help="Delete published rows finished this long ago.")
    ] = "7d",
    dead: Annotated[
        str,
        typer.Option("--dead", help="Delete dead letters finished this long ago, or never."),
    ] = "30d",
    keys: Annotated[
        str, typer.Option("--keys", help="Delete idempotency keys written this long ago.")
    ] = "7d",
    archive: Annotated[
        bool,
        typer.Option(
            "--archive/--no-archive",
            help="Also drop the PostgreSQL archive's months older than --published.",
        ),
    ] = False,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            help="Sweep one tenant's rows only, on a connection scoped to it (docs/tenancy.md).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
) -> None:
    """Delete old published rows, dead letters and idempotency keys (one retention pass).

    Ages are like 45s, 30m, 12h, 7d. Prints how many rows went (with --dry-run, how many
    would).
    """
    policy = RetentionPolicy(
        published=parse_age("--published", published) or timedelta(0),
        dead=parse_age("--dead", dead, never=True),
        idempotency_keys=parse_age("--keys", keys) or timedelta(0),
    )
    scope = parse_tenant(tenant)
    if scope is not None and archive:
        common.bad_input(
            "--tenant with --archive: the archive's monthly partitions hold every tenant's "
            "rows, so they cannot be dropped for one tenant; sweep the archive without --tenant"
        )
    cfg = common.settings(config, {"database_url": (database_url, "--database-url")})
    db = common.database(cfg)
    if archive and db.kind != "postgres":
        common.bad_input("--archive: the monthly archive exists on PostgreSQL only, not SQLite")
    with common.errors_handled(db.url):
        if db.kind == "postgres":
            report = common.run(_postgres(db, policy, scope, archive, dry_run))
        else:
            report = common.run(_sqlite(db, policy, scope, dry_run))
    outcome = Outcome(report, policy.dead is None, dry_run, scope)
    if as_json:
        common.out.print_json(json.dumps(outcome.as_dict()))
    else:
        for line in outcome.lines():
            common.out.print(line, markup=False, soft_wrap=True)
