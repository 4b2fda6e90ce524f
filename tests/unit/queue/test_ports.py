"""Both adapters satisfy the ports (checked by mypy, and at runtime that nothing is missing)."""

from __future__ import annotations

from typing import Any

import aiosqlite
import asyncpg

from tether.queue import ItemAdmin, WorkQueue
from tether.queue.postgres import PostgresQueue
from tether.queue.sqlite import SqliteQueue


def _typed(pg: PostgresQueue, lite: SqliteQueue) -> list[Any]:
    # Not called: mypy checks these assignments against the Protocols.
    a: WorkQueue[asyncpg.Connection] = pg
    b: WorkQueue[aiosqlite.Connection] = lite
    c: ItemAdmin = pg
    return [a, b, c]


def test_adapters_have_every_port_method() -> None:
    names = {n for n in dir(WorkQueue) if not n.startswith("_")}
    for adapter in (PostgresQueue, SqliteQueue):
        assert names <= set(dir(adapter)), names - set(dir(adapter))
