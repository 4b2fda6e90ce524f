"""The durable work-item engine on embedded SQLite: enqueue in a transaction, work, dead-letter,
inspect and replay. The same calls run on PostgreSQL with ``PostgresQueue``.

Run: ``.venv/bin/python examples/quickstart_queue.py`` (no services needed).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path

from tether.core.backoff import RetryPolicy
from tether.outbox.table import OUTBOX
from tether.queue import Claimed, ItemFilter, ItemState, NewItem
from tether.queue.sqlite import SqliteQueue, open_database
from tether.queue.worker import Worker


async def main(path: str) -> None:
    conn = await open_database(path)
    await conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    queue = SqliteQueue(conn, queue="emails", policy=RetryPolicy(max_attempts=1))

    # In the caller's transaction: the items exist iff the business change commits.
    await conn.execute("BEGIN")
    await conn.execute("INSERT INTO orders (id) VALUES (7)")
    await queue.enqueue([NewItem({"order": 7}, partition_key="customer:42")], tx=conn)
    await queue.enqueue([NewItem({"order": 8}, partition_key="customer:43")], tx=conn)
    await conn.execute("COMMIT")

    async def send(claimed: Claimed) -> None:  # raise to fail the attempt
        if claimed.item.payload["order"] == 8:
            raise RuntimeError("mail server said no")

    worker = Worker(queue, send, batch=10, lease=timedelta(seconds=30))
    await worker.run_once()  # or `await worker.run(stop_event)` as a service

    dead = ItemFilter(error="mail server")
    letters = await queue.list(dead)
    print("dead letters:", [i.payload for i in letters])
    print("its error:", (await queue.get_dead(letters[0].id)).last_error)  # one, by id
    print("replayed:", await queue.replay(dead))
    print("stats:", (await queue.stats()).pending, "pending")

    # The outbox's dead letters go through the same operations.
    outbox = SqliteQueue(conn, spec=OUTBOX, queue=None)
    f = ItemFilter(extra={"type": "OrderPlaced", "tenant_id": "t1"}, error="timeout")
    print("outbox dead letters:", await outbox.count(f, states=(ItemState.DEAD,)))
    await conn.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(str(Path(tmp) / "queue.db")))
