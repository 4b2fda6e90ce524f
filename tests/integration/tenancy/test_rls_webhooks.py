"""Webhooks under row-level security: an application role scoped to tenant A sees and manages
none of B's endpoints, deliveries or attempts, even when a call names B (the database refuses
what the application's own tenant filter would let through), through the Python API and
``tether webhooks --tenant`` and the HTTP routes (mounted on a :class:`TenantPool`); an
unscoped role sees nothing; the dispatcher's role (it bypasses
row-level security) sees every tenant."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from typer.testing import CliRunner

from tests.support.tenancy import TenancyDb, tenancy_database
from tether.authz import Authz, MemoryAuthzStore, Registry
from tether.authz.fastapi import OrgFrom, install
from tether.cli import app
from tether.core.errors import NotFoundError
from tether.http.tenant_pool import TenantPool, bind_tenant
from tether.net import SsrfPolicy
from tether.tenancy import SETTING
from tether.webhooks.deliveries import DeliveryLog
from tether.webhooks.model import EndpointSettings
from tether.webhooks.routes import Cap, webhooks_router
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


# -- the HTTP routes, mounted with tenancy --------------------------------------------------


@pytest.fixture
async def client(seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    """The webhooks routes as the application role under row-level security: one pool for
    every tenant, each statement scoped to the request's tenant (TenantPool, bind_tenant)."""
    authz = Authz(MemoryAuthzStore(), Registry(Cap))
    await authz.sync()
    for tenant in TENANTS:
        await authz.add_user(tenant)
        await authz.add_org(tenant)
        await authz.grant(tenant, Cap.MANAGE, tenant)
        await authz.grant(tenant, Cap.READ, tenant)
    pool = TenantPool(await pool_of(seeded.db.app))
    app = FastAPI()
    app.include_router(
        webhooks_router(EndpointStore(pool, ssrf=SSRF), DeliveryLog(pool)),
        prefix="/webhooks",
        dependencies=[Depends(bind_tenant)],
    )

    @app.middleware("http")
    async def authenticate(request: Request, call_next):  # type: ignore[no-untyped-def]
        # Stands in for real authentication, which leaves the caller's tenant here.
        request.scope.setdefault("state", {})["tenant_id"] = request.headers.get("X-Tenant")
        return await call_next(request)

    install(app, authz, user=lambda r: r.headers.get("X-Tenant"), org=OrgFrom.tenant())
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            yield http
    finally:
        await pool.close()


async def test_the_routes_see_and_manage_only_the_callers_tenant(
    seeded: Seeded, client: httpx.AsyncClient
) -> None:
    acme, globex = seeded.endpoint["acme"], seeded.endpoint["globex"]
    theirs = seeded.delivery["globex"]
    as_acme = {"X-Tenant": "acme"}
    listed = await client.get("/webhooks/endpoints", headers=as_acme)
    assert listed.status_code == 200 and [e["id"] for e in listed.json()] == [str(acme)]
    deliveries = await client.get("/webhooks/deliveries", headers=as_acme)
    assert [d["id"] for d in deliveries.json()] == [str(seeded.delivery["acme"])]
    attempts = await client.get("/webhooks/attempts", headers=as_acme)
    assert {a["endpoint_id"] for a in attempts.json()} == {str(acme)}
    for method, path in (
        ("GET", f"/webhooks/endpoints/{globex}"),
        ("DELETE", f"/webhooks/endpoints/{globex}"),
        ("POST", f"/webhooks/endpoints/{globex}/rotate"),
        ("GET", f"/webhooks/deliveries/{theirs}"),
        ("POST", f"/webhooks/deliveries/{theirs}/replay"),
    ):
        r = await client.request(method, path, headers=as_acme)
        assert r.status_code == 404, (method, path, r.text)
    made = await client.post(
        "/webhooks/endpoints", json={"url": "http://127.0.0.1:9/new"}, headers=as_acme
    )
    assert made.status_code == 201 and made.json()["tenant"] == "acme"
    deleted = await client.delete(f"/webhooks/endpoints/{made.json()['id']}", headers=as_acme)
    assert deleted.status_code == 204
    no_tenant = await client.get("/webhooks/endpoints")
    assert no_tenant.status_code == 403
    globex_sees = await client.get("/webhooks/endpoints", headers={"X-Tenant": "globex"})
    assert [e["id"] for e in globex_sees.json()] == [str(globex)]
    # Outside a request nothing is bound: a TenantPool then sees nothing.
    unbound = TenantPool(await pool_of(seeded.db.app))
    try:
        assert await EndpointStore(unbound, ssrf=SSRF).list("acme") == []
    finally:
        await unbound.close()
