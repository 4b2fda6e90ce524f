"""Webhooks under row-level security: an application role scoped to tenant A sees and manages
none of B's endpoints, deliveries or attempts, even when a call names B (the database refuses
what the application's own tenant filter would let through), through the Python API and
``tether webhooks --tenant``; an unscoped role sees nothing; the dispatcher's role (it bypasses
row-level security) sees every tenant."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from typer.testing import CliRunner

from tests.support.tenancy import TenancyDb, tenancy_database
from tether.cli import app
from tether.core.errors import NotFoundError
from tether.net import SsrfPolicy
from tether.tenancy import SETTING
from tether.webhooks.deliveries import DeliveryLog
from tether.webhooks.model import EndpointSettings
from tether.webhooks.store import EndpointStore

pytestmark = pytest.mark.timeout(90)

SSRF = SsrfPolicy(allow=["127.0.0.1"])
TENANTS = ("acme", "globex")


@dataclass(frozen=True)
class Seeded:
    db: TenancyDb
    endpoint: dict[str, uuid.UUID]  # per tenant
    delivery: dict[str, uuid.UUID]  # per tenant: one dead delivery with one attempt


async def pool_of(dsn: str, tenant: str | None = None) -> asyncpg.Pool:
    settings = {SETTING: tenant} if tenant else {}
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, server_settings=settings)
    assert pool is not None
    return pool


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    import asyncio

    with tenancy_database() as db:
        yield asyncio.run(_seed(db))


async def _seed(db: TenancyDb) -> Seeded:
    """As the owner (the fan-out and the dispatcher write deliveries and attempts)."""
    owner = await pool_of(db.admin)
    endpoint, delivery = {}, {}
    try:
        store = EndpointStore(owner, ssrf=SSRF)
        for tenant in TENANTS:
            made = await store.create(tenant, EndpointSettings(url=f"http://127.0.0.1:9/{tenant}"))
            endpoint[tenant], delivery[tenant] = made.id, uuid.uuid4()
            await owner.execute(
                "INSERT INTO tether_webhook_deliveries (id, queue, state, attempts, available_at,"
                " created_at, finished_at, payload, tenant_id, endpoint_id, event_id, event_type)"
                " VALUES ($1, 'medium', 'dead', 1, now(), now(), now(), '{}', $2, $3,"
                " gen_random_uuid(), 'OrderPlaced')",
                delivery[tenant], tenant, made.id,
            )  # fmt: skip
            await owner.execute(
                "INSERT INTO tether_webhook_attempts (delivery_id, endpoint_id, tenant_id,"
                " event_id, attempt, at, outcome, status_code) VALUES ($1, $2, $3,"
                " gen_random_uuid(), 1, now(), 'dead', 500)",
                delivery[tenant], made.id, tenant,
            )  # fmt: skip
    finally:
        await owner.close()
    return Seeded(db, endpoint, delivery)


@pytest.fixture
async def pools(seeded: Seeded) -> AsyncIterator[dict[str, asyncpg.Pool]]:
    opened = {
        "acme": await pool_of(seeded.db.app, "acme"),
        "none": await pool_of(seeded.db.app),
        "relay": await pool_of(seeded.db.relay),
    }
    try:
        yield opened
    finally:
        for pool in opened.values():
            await pool.close()


async def test_a_tenant_sees_and_manages_only_its_endpoints(
    seeded: Seeded, pools: dict[str, asyncpg.Pool]
) -> None:
    acme, globex = seeded.endpoint["acme"], seeded.endpoint["globex"]
    mine = EndpointStore(pools["acme"], ssrf=SSRF)
    assert [e.id for e in await mine.list("acme")] == [acme]
    # The calls below name globex: the application's filter would let them through, the
    # database's policy does not.
    assert await mine.list("globex") == []
    for act in (mine.get, mine.delete, mine.rotate_secret):
        with pytest.raises(NotFoundError):
            await act("globex", globex)
    with pytest.raises(NotFoundError):
        await mine.update("globex", globex, enabled=False)
    with pytest.raises(Exception, match="row-level security"):
        await mine.create("globex", EndpointSettings(url="http://127.0.0.1:9/x"))
    # Unscoped: nothing, for any tenant.
    none = EndpointStore(pools["none"], ssrf=SSRF)
    assert await none.list("acme") == [] and await none.list(None) == []
    # The dispatcher's role sees both; globex's endpoint is as seeded.
    everyone = EndpointStore(pools["relay"], ssrf=SSRF)
    assert [e.id for e in await everyone.list("globex")] == [globex]
    assert (await everyone.get("globex", globex)).settings.enabled


async def test_a_tenant_sees_and_replays_only_its_deliveries_and_attempts(
    seeded: Seeded, pools: dict[str, asyncpg.Pool]
) -> None:
    theirs, their_endpoint = seeded.delivery["globex"], seeded.endpoint["globex"]
    since = datetime.now(UTC) - timedelta(days=1)
    mine, none = DeliveryLog(pools["acme"]), DeliveryLog(pools["none"])
    assert [d.id for d in await mine.deliveries("acme")] == [seeded.delivery["acme"]]
    assert [a.delivery_id for a in await mine.attempts("acme")] == [seeded.delivery["acme"]]
    assert await mine.deliveries("globex") == []
    assert await mine.attempts("globex") == []
    with pytest.raises(NotFoundError):
        await mine.delivery("globex", theirs)
    with pytest.raises(NotFoundError):
        await mine.replay("globex", theirs)
    assert await mine.recover("globex", their_endpoint, since) == 0
    for tenant in TENANTS:
        assert await none.deliveries(tenant) == [] and await none.attempts(tenant) == []
    everyone = DeliveryLog(pools["relay"])
    assert (await everyone.delivery("globex", theirs)).state.value == "dead"  # not replayed
    assert len(await everyone.attempts("globex")) == 1


def test_the_cli_stays_inside_the_tenant(seeded: Seeded) -> None:
    db = seeded.db

    def tw(dsn: str, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["webhooks", *args, "--database-url", dsn])
        return result.exit_code, result.output

    def ids(dsn: str, *args: str) -> list[str]:
        code, out = tw(dsn, *args, "--json")
        assert code == 0, out
        return [row["id"] for row in json.loads(out)]

    acme, globex = str(seeded.endpoint["acme"]), str(seeded.endpoint["globex"])
    assert ids(db.app, "endpoints", "list", "--tenant", "acme") == [acme]
    assert ids(db.app, "endpoints", "list") == []  # untenanted: no tenant's, and none of its own
    assert ids(db.relay, "endpoints", "list", "--tenant", "globex") == [globex]
    delivered = ids(db.app, "deliveries", "--tenant", "globex")
    assert delivered == [str(seeded.delivery["globex"])]
    code, out = tw(db.app, "replay", delivered[0], "--tenant", "acme")
    assert code == 1 and "no webhook delivery" in out
    code, out = tw(db.app, "endpoints", "delete", globex, "--tenant", "acme")
    assert code == 1 and "no webhook endpoint" in out
    code, out = tw(db.app, "attempts", "--tenant", "acme", "--json")
    assert code == 0 and {a["endpoint_id"] for a in json.loads(out)} == {acme}
    code, out = tw(db.app, "endpoints", "list", "--tenant", "no spaces")
    assert code == 2
