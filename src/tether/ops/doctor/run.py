"""Run every doctor check against a configured installation, in order, each bounded in time.

A check that cannot run because an earlier one failed (no database, no tables) is reported as
skipped with the reason; a check that raises is reported as failed with the error, so one
surprise never hides the other findings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tether.config import Database, Settings
from tether.core.envelope import Event
from tether.ops.doctor import expected, postgres, sinks
from tether.ops.doctor.check import Result, Status, fail, skip

DATABASE_CHECKS = (
    "migrations current", "tables", "indexes", "autovacuum", "NOTIFY round trip",
    "clock skew", "relay heartbeat", "runners", "dead letters", "oldest pending",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Options:
    probe: sinks.Probe = field(default_factory=sinks.Probe)
    end_to_end: bool = True
    pending_warn: float = 60.0  # seconds an event may wait before the doctor mentions it
    pending_fail: float = 600.0
    connect_timeout: float = 5.0
    check_timeout: float = 10.0  # each check but the end-to-end one (probe.timeout for that)


async def diagnose(cfg: Settings, db: Database, options: Options | None = None) -> list[Result]:
    options = options or Options()
    if db.kind == "sqlite":
        return await _sqlite(cfg, db, options)
    return await _postgres(cfg, db, options)


async def _guard(name: str, check: Awaitable[Result], timeout: float) -> Result:
    try:
        async with asyncio.timeout(timeout):
            return await check
    except TimeoutError:
        return fail(name, f"no answer within {timeout:g}s", "see why the database is slow")
    except Exception as exc:  # a check's own failure is a finding, not a crash of the command
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        return fail(
            name, detail[:300], "read the error above; run `tether migrate` if a table is missing"
        )


async def _connect(db: Database, timeout: float) -> tuple[Any, Any]:
    import asyncpg

    from tether.store.postgres import pooler

    kwargs = pooler.connect_kwargs(db.pooler, {"application_name": "tether-doctor"})
    first = await asyncpg.connect(db.url, timeout=timeout, **kwargs)
    try:
        return first, await asyncpg.connect(db.url, timeout=timeout, **kwargs)
    except BaseException:
        await first.close()
        raise


def _is_unreachable(exc: Exception) -> bool:
    return isinstance(exc, OSError | TimeoutError) or type(exc).__module__.startswith("asyncpg")


async def _postgres(cfg: Settings, db: Database, options: Options) -> list[Result]:
    try:
        conn, other = await _connect(db, options.connect_timeout)
    except Exception as exc:
        if not _is_unreachable(exc):
            raise
        return await _without_database(exc, cfg, options)
    try:
        return await _on(conn, other, cfg, db, options)
    finally:
        await other.close()
        await conn.close()


async def _without_database(exc: BaseException, cfg: Settings, options: Options) -> list[Result]:
    return await _without_database_result(postgres.unreachable(exc), cfg, options)


async def _without_database_result(first: Result, cfg: Settings, options: Options) -> list[Result]:
    results = [first]
    results += [skip(n, "the database is not reachable") for n in DATABASE_CHECKS]
    results += await _sink_checks(cfg, options)  # the brokers do not depend on the database
    results.append(skip("end-to-end event", "the database is not reachable"))
    return results


async def _on(conn: Any, other: Any, cfg: Settings, db: Database, options: Options) -> list[Result]:
    schema = expected.postgres()
    limit = options.check_timeout
    results = [await postgres.reachable(conn)]
    checks: list[tuple[str, Awaitable[Result]]] = [
        ("migrations current", postgres.migrations_current(conn)),
        ("tables", postgres.tables(conn, schema)),
        ("indexes", postgres.indexes(conn, schema)),
        ("autovacuum", postgres.autovacuum(conn, schema)),
        ("NOTIFY round trip", postgres.notify_round_trip(other, conn, db.pooler, 2.0)),
        ("clock skew", postgres.clock_skew(conn)),
        ("relay heartbeat", postgres.relay_heartbeat(conn)),
        ("runners", postgres.runners(conn)),
    ]
    for name, check in checks:
        results.append(await _guard(name, check, limit))
    tables_ok = await postgres.outbox_present(conn)
    if not tables_ok:
        for name in ("dead letters", "oldest pending"):
            results.append(skip(name, "Tether's tables are missing"))
    else:
        results.append(await _guard("dead letters", postgres.dead_letters(conn), limit))
        results.append(
            await _guard(
                "oldest pending",
                postgres.oldest_pending(conn, options.pending_warn, options.pending_fail),
                limit,
            )
        )
    results += await _sink_checks(cfg, options)
    results.append(await _end_to_end(conn, cfg, options, tables_ok, results))
    return results


async def _sink_checks(cfg: Settings, options: Options) -> list[Result]:
    names = cfg.sinks.enabled()
    if not names:
        return [skip("sinks", "none configured (nothing to relay to)")]
    return [await sinks.reachable(cfg, n, options.check_timeout) for n in names]


async def _end_to_end(
    conn: Any,
    cfg: Settings,
    options: Options,
    tables_ok: bool,
    results: list[Result],
    *,
    probe_io: Callable[[Any], tuple[sinks.Write, sinks.Fetch, sinks.Fetch]] | None = None,
) -> Result:
    name = "end-to-end event"
    if not options.end_to_end:
        return skip(name, "turned off (--no-end-to-end)")
    if not tables_ok:
        return skip(name, "Tether's tables are missing")
    down = [r.name for r in results if r.name.startswith("sink ") and r.status is Status.FAIL]
    if down:
        return skip(name, f"{', '.join(down)} not reachable")
    return await _guard(
        name,
        sinks.end_to_end(cfg, options.probe, *(probe_io or _probe_io)(conn)),
        options.probe.timeout + options.check_timeout,
    )


def _probe_io(conn: Any) -> tuple[sinks.Write, sinks.Fetch, sinks.Fetch]:
    from tether.outbox.producer import add_event

    async def write(type: str, fields: dict[str, Any]) -> Event:
        async with conn.transaction():
            ref = await add_event(
                conn, type, fields["payload"], topic=fields["topic"], notify=True, max_attempts=1
            )
        return ref.event

    async def state(event: Event) -> list[Any]:
        return list(await conn.fetch(postgres.query("probe_state"), event.id))

    async def remove(event: Event) -> list[Any]:
        await conn.execute(postgres.query("remove_probe"), event.id, timeout=5)
        return []

    return write, state, remove


POSTGRES_ONLY = ("autovacuum", "NOTIFY round trip", "clock skew", "relay heartbeat", "runners")


async def _sqlite(cfg: Settings, db: Database, options: Options) -> list[Result]:
    import aiosqlite

    from tether.ops.doctor import sqlite

    path = db.sqlite_path
    if path is None or not path.is_file():
        missing = fail(
            "database reachable",
            f"SQLite file {str(path)!r} does not exist",
            "run `tether migrate` to create it, or correct database_url (sqlite:///path)",
        )
        return await _without_database_result(missing, cfg, options)
    conn = await aiosqlite.connect(str(path))
    try:
        limit = options.check_timeout
        results = [await sqlite.reachable(conn)]
        results.append(await _guard("migrations current", sqlite.migrations_current(conn), limit))
        results += await sqlite.schema(conn)
        results += [skip(n, "PostgreSQL only") for n in POSTGRES_ONLY]
        tables_ok = next(r for r in results if r.name == "tables").status is Status.OK
        if tables_ok:
            results.append(await _guard("dead letters", sqlite.dead_letters(conn), limit))
            pending = sqlite.oldest_pending(conn, options.pending_warn, options.pending_fail)
            results.append(await _guard("oldest pending", pending, limit))
        else:
            results += [
                skip(n, "Tether's tables are missing") for n in ("dead letters", "oldest pending")
            ]
        results += await _sink_checks(cfg, options)
        results.append(
            await _end_to_end(conn, cfg, options, tables_ok, results, probe_io=_sqlite_probe_io)
        )
        return results
    finally:
        await conn.close()


def _sqlite_probe_io(conn: Any) -> tuple[sinks.Write, sinks.Fetch, sinks.Fetch]:
    from tether.ops.doctor import sqlite
    from tether.outbox.producer import add_event

    async def write(type: str, fields: dict[str, Any]) -> Event:
        ref = await add_event(conn, type, fields["payload"], topic=fields["topic"], max_attempts=1)
        await conn.commit()
        return ref.event

    async def state(event: Event) -> list[Any]:
        async with conn.execute(sqlite.query("probe_state"), {"id": str(event.id)}) as cursor:
            return [{"state": r[0], "last_error": r[1]} for r in await cursor.fetchall()]

    async def remove(event: Event) -> list[Any]:
        await conn.execute(sqlite.query("remove_probe"), {"id": str(event.id)})
        await conn.commit()
        return []

    return write, state, remove
