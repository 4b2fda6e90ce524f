"""The database checks on PostgreSQL: reachable, migrated, tables, indexes, storage settings,
NOTIFY, clock skew, relay heartbeat, runners lost, dead letters and the oldest pending event."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from tether.ops.doctor import expected
from tether.ops.doctor.check import Result, fail, ok, skip, warn
from tether.ops.runners import LATE_INTERVALS
from tether.store.postgres.pooler import PoolerMode
from tether.store.sqlfile import queries

_Q = queries("tether.ops.doctor", "postgres")
RELAY_APPLICATION = "tether-relay"  # tether.outbox.store_pg names its sessions so

# Thresholds: a relay stuck this long in one batch, a clock this far off, events this old.
STUCK_SECONDS = 60.0
SKEW_WARN, SKEW_FAIL = 1.0, 30.0
MAX_LISTED = 3  # names in a detail before "and N more"
LOST_WITHIN_S = 3600.0  # runners lost longer ago than this are history, not news


def query(name: str) -> str:
    return _Q[name].numbered


async def _one(conn: asyncpg.Connection, name: str) -> asyncpg.Record:
    row = await conn.fetchrow(query(name))
    assert row is not None  # aggregates and to_regclass always return one row
    return row


async def reachable(conn: asyncpg.Connection) -> Result:
    version = await conn.fetchval("SHOW server_version")
    return ok("database reachable", f"PostgreSQL {version}")


def migration_heads() -> list[str]:
    from alembic.script import ScriptDirectory

    from tether.store import migrations

    script = ScriptDirectory.from_config(migrations.config("postgresql://unused/x"))
    return sorted(script.get_heads())


async def migrations_current(conn: asyncpg.Connection) -> Result:
    name = "migrations current"
    found = await _one(conn, "version_table")
    heads = migration_heads()
    if not found["present"]:
        if found["outbox"]:
            return fail(
                name,
                "Tether's tables exist but no migration is recorded (created from the plain "
                "schema file?)",
                "if the schema is current run `tether migrate --stamp`, else `tether migrate`",
            )
        return fail(name, "no Tether migration has run here", "run `tether migrate`")
    at = sorted(r["version_num"] for r in await conn.fetch(query("versions")))
    if at != heads:
        return fail(
            name,
            f"database at {', '.join(at) or 'nothing'}, this Tether expects {', '.join(heads)}",
            "run `tether migrate` (back up first; it is safe to re-run)",
        )
    return ok(name, f"at {', '.join(heads)}")


async def _relations(conn: asyncpg.Connection) -> dict[str, Any]:
    return {r["name"]: r for r in await conn.fetch(query("relations"))}


async def outbox_present(conn: asyncpg.Connection) -> bool:
    return bool((await _one(conn, "version_table"))["outbox"])


async def tables(conn: asyncpg.Connection, schema: expected.Schema) -> Result:
    found = await _relations(conn)
    missing = [t for t in schema.tables if found.get(t) is None or found[t]["kind"] not in "rp"]
    if missing:
        return fail(
            "tables",
            f"missing: {_some(missing)}",
            "run `tether migrate` (a table was dropped or a migration did not run)",
        )
    return ok("tables", f"all {len(schema.tables)} present")


async def indexes(conn: asyncpg.Connection, schema: expected.Schema) -> Result:
    found = await _relations(conn)
    missing = [i for i in schema.indexes if i.name not in found]
    invalid = [i for i in schema.indexes if i.name in found and not found[i.name]["valid"]]
    if missing:
        fix = (
            "recreate: " + " ".join(i.statement for i in missing)
            if len(missing) <= MAX_LISTED
            else "run `tether migrate` (whole components are missing)"
        )
        return fail("indexes", f"missing: {_some([i.name for i in missing])}", fix)
    if invalid:
        names = ", ".join(i.name for i in invalid)
        return fail(
            "indexes",
            f"invalid (a failed CREATE INDEX CONCURRENTLY?): {names}",
            " ".join(f"REINDEX INDEX CONCURRENTLY {i.name};" for i in invalid),
        )
    return ok("indexes", f"all {len(schema.indexes)} present and valid")


def _some(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown if len(names) <= MAX_LISTED else f"{shown} and {len(names) - MAX_LISTED} more"


def _options(raw: Sequence[str] | None) -> dict[str, str]:
    return {k: v for k, _, v in (o.partition("=") for o in raw or ())}


async def autovacuum(conn: asyncpg.Connection, schema: expected.Schema) -> Result:
    found = await _relations(conn)
    wrong: list[str] = []
    fixes: list[str] = []
    for table, want in schema.storage.items():
        have = _options(found[table]["options"]) if table in found else {}
        off = {k: v for k, v in want.items() if have.get(k) != v}
        if off:
            now = ", ".join(f"{k}={have.get(k, 'default')}" for k in off)
            wrong.append(f"{table} ({now})")
            settings = ", ".join(f"{k} = {v}" for k, v in off.items())
            fixes.append(f"ALTER TABLE {table} SET ({settings});")
    if wrong:
        return warn(
            "autovacuum",
            f"hot tables not tuned: {'; '.join(wrong)}",
            " ".join(fixes) + " (dead rows pile up between vacuums and slow the claim)",
        )
    return ok("autovacuum", f"hot tables tuned: {', '.join(schema.storage)}")


async def notify_round_trip(
    listener: asyncpg.Connection, sender: asyncpg.Connection, pooler: PoolerMode, timeout: float
) -> Result:
    name = "NOTIFY round trip"
    channel = f"tether_doctor_{uuid.uuid4().hex[:12]}"
    heard: asyncio.Queue[str] = asyncio.Queue()

    def on_notify(*args: object) -> None:
        heard.put_nowait(str(args[-1]))

    await listener.add_listener(channel, on_notify)
    try:
        started = time.perf_counter()
        await sender.execute("SELECT pg_notify($1, 'ping')", channel)
        try:
            async with asyncio.timeout(timeout):
                await heard.get()
        except TimeoutError:
            fix = (
                "a transaction-mode pooler drops LISTEN: give relays a direct URL to listen on"
                if pooler is PoolerMode.TRANSACTION
                else "check that nothing between Tether and PostgreSQL drops LISTEN/NOTIFY"
            )
            return warn(
                name, f"no notification within {timeout:g}s (relays fall back to polling)", fix
            )
        return ok(name, f"{(time.perf_counter() - started) * 1000:.1f} ms")
    finally:
        await listener.remove_listener(channel, on_notify)


async def clock_skew(conn: asyncpg.Connection) -> Result:
    name = "clock skew"
    before = time.time()
    db_now: datetime = await conn.fetchval(query("clock"))
    after = time.time()
    ours = (before + after) / 2  # the server read its clock somewhere in the round trip
    skew = db_now.timestamp() - ours
    detail = f"database clock {skew:+.3f}s from this host's (round trip {after - before:.3f}s)"
    fix = "run NTP (chrony, systemd-timesyncd) on both hosts: retry times and ages are skewed"
    if abs(skew) > SKEW_FAIL:
        return fail(name, detail, fix)
    if abs(skew) > SKEW_WARN:
        return warn(name, detail, fix)
    return ok(name, detail)


async def relay_heartbeat(conn: asyncpg.Connection) -> Result:
    name = "relay heartbeat"
    rows = await conn.fetch(query("relays"), RELAY_APPLICATION)
    if not rows:
        return fail(
            name,
            "no relay is connected to this database",
            "start one: `tether relay` (events wait in the outbox until a relay publishes them)",
        )
    visible = [r for r in rows if r["quiet"] is not None]
    if not visible:
        return warn(
            name,
            f"{len(rows)} relay session(s), their activity hidden from this role",
            "run the doctor as the relay's role or grant it pg_read_all_stats",
        )
    stuck = [
        r for r in visible
        if r["state"] == "idle in transaction" and r["quiet"].total_seconds() > STUCK_SECONDS
    ]  # fmt: skip
    freshest = min(r["quiet"].total_seconds() for r in visible)
    detail = f"{len(rows)} relay session(s), last active {max(freshest, 0):.1f}s ago"
    if stuck:
        pids = ", ".join(str(r["pid"]) for r in stuck)
        return fail(
            name,
            f"{detail}; batch open for over {STUCK_SECONDS:g}s in session(s) {pids}",
            "a publish hangs: check the sinks and the relay's publish_timeout; restart the relay",
        )
    if freshest > STUCK_SECONDS:
        return warn(name, detail, "the relay's sessions are idle: is its loop running?")
    return ok(name, detail)


async def runners(conn: asyncpg.Connection) -> Result:
    """Runners that stopped beating without a clean stop in the last hour (killed, hung, or
    cut off from the database): the registry's view, next to the relay's sessions above."""
    name = "runners"
    if not await conn.fetchval("SELECT to_regclass('tether_runners') IS NOT NULL"):
        return skip(name, "no runner registry (tether migrate adds it)")
    rows = await conn.fetch(query("runners"))
    alive: dict[str, int] = {}
    silent: list[str] = []
    for r in rows:
        if r["stopped_at"] is not None:
            continue
        quiet = (r["now"] - r["heartbeat_at"]).total_seconds()
        if quiet <= LATE_INTERVALS * r["interval_s"]:
            alive[r["kind"]] = alive.get(r["kind"], 0) + 1
        elif quiet <= LOST_WITHIN_S:
            silent.append(f"{r['kind']} {r['name']} on {r['host']} (silent {quiet:.0f}s)")
    beating = ", ".join(f"{n} {kind}" for kind, n in sorted(alive.items())) or "none"
    detail = f"beating: {beating}"
    if silent:
        return warn(
            name,
            f"{detail}; lost in the last hour: {_some(silent)}",
            "a runner died without stopping (killed, out of memory, its host gone): "
            "read its logs, and start another if none replaced it",
        )
    return ok(name, detail)


async def dead_letters(conn: asyncpg.Connection) -> Result:
    name = "dead letters"
    backlog = await _one(conn, "backlog")
    items = await conn.fetch(query("dead_items"))
    parts = [f"outbox {backlog['dead']}"] + [f"queue {r['queue']} {r['dead']}" for r in items]
    total = backlog["dead"] + sum(r["dead"] for r in items)
    if total:
        return warn(
            name,
            ", ".join(parts),
            "inspect with `tether dlq list`, then `tether dlq replay` once the cause is fixed",
        )
    return ok(name, "none")


async def oldest_pending(conn: asyncpg.Connection, warn_after: float, fail_after: float) -> Result:
    name = "oldest pending"
    row = await _one(conn, "backlog")
    if row["oldest"] is None:
        return ok(name, "nothing pending")
    age = max(0.0, (row["now"] - row["oldest"]).total_seconds())
    detail = f"{age:.1f}s old"
    fix = "see `tether status`: is the relay running, and are its sinks up (relay heartbeat)?"
    if age > fail_after:
        return fail(name, detail, fix)
    if age > warn_after:
        return warn(name, detail, fix)
    return ok(name, detail)


def unreachable(exc: BaseException) -> Result:
    return fail(
        "database reachable",
        f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
        "start PostgreSQL or correct database_url (--database-url / TETHER_DATABASE_URL)",
    )


def skipped(names: Sequence[str], why: str) -> list[Result]:
    return [skip(n, why) for n in names]
