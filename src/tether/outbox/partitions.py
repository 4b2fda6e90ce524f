"""Monthly partitions of the outbox archive (``tether_outbox_archive``, PostgreSQL only).

A relay with ``keep_published=True, archive=True`` moves published rows into the archive as it
settles them. The archive is range-partitioned by month on ``finished_at``:

* :func:`ensure_partitions` creates this month's partition and ``ahead`` more (idempotent; run
  it daily or at deploy). Rows that fell into the default partition because their month did
  not exist yet are moved into the month when it is created.
* :func:`drop_expired` drops whole months whose every row is older than the retention period
  (a ``DROP TABLE``, no mass ``DELETE`` and nothing to vacuum). A month still holding a row
  newer than the cut-off is kept; the default partition's old rows are deleted.

Partitions are named ``tether_outbox_archive_yYYYYmMM``; partitions of other names are never
touched. Both functions take an advisory lock so two schedulers do not race.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from tether.core.errors import ConfigError

ARCHIVE = "tether_outbox_archive"
DEFAULT = f"{ARCHIVE}_default"
_NAME = re.compile(rf"^{ARCHIVE}_y(\d{{4}})m(\d{{2}})$")
_LOCK = 724_206  # advisory lock key shared by both operations


@dataclass(frozen=True, slots=True)
class DropReport:
    dropped: tuple[str, ...]  # partitions dropped, oldest first
    default_rows: int  # expired rows deleted from the default partition


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of ``moment``'s month."""
    if moment.tzinfo is None:
        raise ConfigError(f"a time zone is required, got naive datetime {moment}")
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def add_months(start: datetime, months: int) -> datetime:
    index = start.year * 12 + start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"{ARCHIVE}_y{start.year:04d}m{start.month:02d}"


def _literal(moment: datetime) -> str:
    # DDL takes no bind parameters; the value is formatted from a datetime, never user text.
    return f"'{moment.strftime('%Y-%m-%d %H:%M:%S')}+00'"


async def existing_partitions(conn: asyncpg.Connection) -> dict[str, datetime]:
    """Tether's monthly partitions of the archive, by name, with the month each starts."""
    rows = await conn.fetch(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = $1::regclass""",
        ARCHIVE,
    )
    found: dict[str, datetime] = {}
    for row in rows:
        match = _NAME.match(row["relname"])
        if match:
            found[row["relname"]] = datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)
    return found


async def ensure_partitions(
    conn: asyncpg.Connection, *, ahead: int = 3, now: datetime | None = None
) -> list[str]:
    """Create the partitions of this month and the ``ahead`` following ones that are missing;
    return the names created (empty when all exist)."""
    if ahead < 0 or ahead > 120:
        raise ConfigError(f"ahead must be between 0 and 120 months, got {ahead}")
    first = month_start(now or datetime.now(UTC))
    created: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        have = await existing_partitions(conn)
        for n in range(ahead + 1):
            start = add_months(first, n)
            name = partition_name(start)
            if name not in have:
                await _create(conn, name, start, add_months(start, 1))
                created.append(name)
    return created


async def _create(conn: asyncpg.Connection, name: str, start: datetime, end: datetime) -> None:
    # Built detached and attached after, so the month's rows waiting in the default partition
    # can move first: attaching checks that the default holds none of the month's rows.
    low, high = _literal(start), _literal(end)
    await conn.execute(f"CREATE TABLE {name} (LIKE {ARCHIVE})")
    await conn.execute(
        f"""WITH moved AS (DELETE FROM {DEFAULT}
                           WHERE finished_at >= {low} AND finished_at < {high} RETURNING *)
            INSERT INTO {name} SELECT * FROM moved"""
    )
    await conn.execute(
        f"ALTER TABLE {ARCHIVE} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})"
    )


async def drop_expired(
    conn: asyncpg.Connection, older_than: timedelta, *, now: datetime | None = None
) -> DropReport:
    """Drop the months that end at or before ``now - older_than`` and delete older rows from
    the default partition. Dropping takes a brief exclusive lock on the archive, which waits
    for settling transactions in flight to end."""
    if older_than < timedelta(0):
        raise ConfigError(f"retention must not be negative, got {older_than}")
    cutoff = (now or datetime.now(UTC)) - older_than
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        have = await existing_partitions(conn)
        expired = sorted(
            (start, name) for name, start in have.items() if add_months(start, 1) <= cutoff
        )
        for _, name in expired:
            await conn.execute(f"DROP TABLE {name}")
        status = await conn.execute(f"DELETE FROM {DEFAULT} WHERE finished_at < $1", cutoff)
    return DropReport(tuple(name for _, name in expired), int(status.rpartition(" ")[2]))
