"""The webhooks sink under a relay that cannot lend its transaction (SQLite here; a pooler that
forbids it alike): ``publish`` writes the deliveries in a transaction of its own before the
relay settles. Still no loss and no duplicate:

* a crash between that write and the settle (modelled by putting the outbox rows back to
  pending, as a relay that died before settling leaves them) re-publishes, and the unique
  (event, endpoint) key adds nothing;
* PostgreSQL unreachable leaves the events pending, with no attempt spent, until it is back.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tests.contract.outbox.harness import open_sqlite
from tether.outbox.relay import Relay
from tether.outbox.store_sqlite import SqliteOutboxStore
from tether.webhooks.model import EndpointSettings
from tether.webhooks.sink import WebhooksSink
from tether.webhooks.store import EndpointStore

EVENTS = 30


async def relay_all(path: Path, sink: WebhooksSink) -> None:
    store = await SqliteOutboxStore.connect(str(path), keep_published=True)
    try:
        relay = Relay(store, [sink])
        for _ in range(20):  # bounded: 30 events take a batch or two
            if not (await relay.run_once()).claimed:
                break
    finally:
        await store.close()


async def test_publish_path_loses_nothing_and_adds_no_duplicate(
    pg_dsn: str, pool: asyncpg.Pool, store: EndpointStore, tmp_path: Path
) -> None:
    await store.create("acme", EndpointSettings("http://127.0.0.1:9/a"))
    await store.create("acme", EndpointSettings("http://127.0.0.1:9/b", filters=("Order*",)))
    outbox = await open_sqlite(str(tmp_path / "outbox.db"))
    try:
        await outbox.produce(EVENTS, tenant_id="acme")
        down = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1)
        await down.close()  # PostgreSQL unreachable for the sink
        await relay_all(tmp_path / "outbox.db", WebhooksSink(down))
        rows = await outbox.rows()
        assert {r["state"] for r in rows} == {"pending"}
        assert {r["attempts"] for r in rows} == {0}  # a down target spends no attempt
        assert await pool.fetchval("SELECT count(*) FROM tether_webhook_deliveries") == 0

        await outbox.make_due()  # the deferral is over: PostgreSQL is back
        sink = WebhooksSink(pool)
        await relay_all(tmp_path / "outbox.db", sink)
        assert {r["state"] for r in await outbox.rows()} == {"done"}
        deliveries = "SELECT count(*) FROM tether_webhook_deliveries"
        assert await pool.fetchval(deliveries) == 2 * EVENTS  # one per event and endpoint

        # The relay died after publish and before settling: the rows come back pending.
        await outbox.conn.execute(
            "UPDATE tether_outbox SET state = 'pending', done_sinks = '[]', "
            "available_at = '1970-01-01T00:00:00.000000+00:00'"
        )
        await outbox.conn.commit()
        await relay_all(tmp_path / "outbox.db", sink)
        assert {r["state"] for r in await outbox.rows()} == {"done"}
        assert await pool.fetchval(deliveries) == 2 * EVENTS  # re-published, nothing added
        per_pair = await pool.fetchval(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM tether_webhook_deliveries "
            "GROUP BY event_id, endpoint_id) t"
        )
        assert per_pair == 1
    finally:
        await outbox.close()
