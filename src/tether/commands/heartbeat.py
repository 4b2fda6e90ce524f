"""The runner-registry flags and connection shared by the long-running commands (``tether
relay``, ``worker``, ``webhooks run``, ``realtime``, ``consume run``): each registers itself in
``tether_runners`` and beats there, so operators see it alive while idle and lost once killed.

Only on PostgreSQL: with SQLite, each process would hold a registry nobody else can read, so
the commands do not register. The registry gets its own one-connection pool, opened lazily:
a database unreachable at start delays the registration (the heartbeat retries it), never the
command.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from typing import Annotated

import typer

from tether.commands import common
from tether.config import Database
from tether.ops.runners import PostgresRunnerRegistry, RunnerRegistry
from tether.store.postgres import pooler

HeartbeatOption = Annotated[
    float,
    typer.Option(
        "--heartbeat",
        envvar="TETHER_HEARTBEAT",
        help="Seconds between beats in the runner registry (PostgreSQL only; 0: do not register).",
    ),
]
RunnerNameOption = Annotated[
    str | None,
    typer.Option(
        "--name",
        envvar="TETHER_RUNNER_NAME",
        help="This process's name in the runner registry (default: <host>:<pid>).",
        show_default=False,
    ),
]


def checked_heartbeat(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds < 0:
        common.bad_input(
            f"--heartbeat must be 0 (off) or a positive number of seconds, got {seconds}"
        )
    return seconds


@contextlib.asynccontextmanager
async def runner_registry(db: Database, heartbeat_s: float) -> AsyncIterator[RunnerRegistry | None]:
    """The registry this command beats in, or None (SQLite, or ``--heartbeat 0``)."""
    if db.kind != "postgres" or heartbeat_s <= 0:
        yield None
        return
    import asyncpg

    # min_size=0: no connection is made until the first registration, which the heartbeat
    # retries in the background if the database is down.
    pool = await asyncpg.create_pool(
        db.url, min_size=0, max_size=1, **pooler.connect_kwargs(db.pooler)
    )
    try:
        yield PostgresRunnerRegistry(pool)
    finally:
        await pool.close()
