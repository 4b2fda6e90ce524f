"""Background jobs and webhooks under row-level security: jobs take the enqueuing
transaction's tenant and run scoped to it; the webhooks routes serve every tenant from one pool.

Run: ``.venv/bin/python examples/tenancy_jobs_webhooks.py [ADMIN_DSN]`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``, a superuser: the example creates a database
and a role, and drops both at the end). ``docs/tenancy.md`` quotes this file;
``tests/integration/tenancy/test_tenancy_example.py`` runs it.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

import asyncpg
import httpx
import psycopg
from fastapi import Depends, FastAPI, Request

from tether.authz import Authz, MemoryAuthzStore, Registry
from tether.authz.fastapi import OrgFrom, install
from tether.http.tenant_pool import TenantPool, bind_tenant
from tether.jobs import JobContext, JobRegistry, Jobs, JobStore, JobWorker
from tether.net import SsrfPolicy
from tether.store import migrations
from tether.tenancy import tenant_scope
from tether.webhooks.deliveries import DeliveryLog
from tether.webhooks.routes import Cap, webhooks_router
from tether.webhooks.store import EndpointStore


def deploy(owner_dsn: str, app_role: str) -> None:
    migrations.upgrade(owner_dsn)
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        conn.execute("SELECT tether_tenancy(true)")
        # Jobs and webhooks: each tenant's rows under the tenant policy. Cron ticks and
        # recovery counts (tether_job_ticks, tether_job_recoveries) are the operator's.
        conn.execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON tether_jobs, tether_webhook_endpoints, "
            f'tether_webhook_deliveries TO "{app_role}"'
        )
        conn.execute(f'GRANT SELECT, DELETE ON tether_webhook_attempts TO "{app_role}"')


jobs_registry = JobRegistry()


@jobs_registry.job(name="invoice", transactional=True)
async def invoice(order: str, ctx: JobContext) -> str:
    # ctx.tx is scoped to the job's tenant: what the job writes there is that tenant's.
    scope = await ctx.tx.fetchval("SELECT tether_tenant()")
    return f"invoice for {order} in {ctx.tenant} (transaction scoped to {scope})"


async def jobs_demo(owner_dsn: str, app_dsn: str) -> None:
    app_pool = await asyncpg.create_pool(app_dsn, min_size=1, max_size=2)
    jobs = Jobs(JobStore(app_pool), jobs_registry)
    # The application enqueues in its scoped transaction: the job takes that tenant.
    for tenant, order in (("acme", "o-1"), ("globex", "g-1")):
        async with app_pool.acquire() as conn, conn.transaction():
            await tenant_scope(conn, tenant)
            await jobs.enqueue("invoice", {"order": order}, tx=conn)
    await app_pool.close()
    # The worker runs as the owner: it sees every tenant's jobs, and runs each in its tenant.
    owner = await Jobs.connect(owner_dsn, jobs_registry)
    worker = JobWorker(owner, schedules=False)
    await worker.run_once()
    await worker.drain()
    for row in await owner.store.pool.fetch("SELECT result FROM tether_jobs ORDER BY seq"):
        print(row["result"].strip('"'))
    await owner.close()
    # A tenant's view of the jobs: a store whose connections are scoped to it.
    acme = await JobStore.connect(app_dsn, tenant="acme")
    print("acme's jobs:", await acme.engine.count())
    await acme.close()


def webhooks_app(pool: TenantPool, authz: Authz) -> FastAPI:
    app = FastAPI()
    # One pool for every tenant: each statement runs scoped to the request's tenant.
    app.include_router(
        webhooks_router(
            EndpointStore(pool, ssrf=SsrfPolicy(allow=["127.0.0.1"])), DeliveryLog(pool)
        ),
        prefix="/webhooks",
        dependencies=[Depends(bind_tenant)],
    )

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Any:
        # Stands in for real authentication, which leaves the caller's tenant here.
        request.scope.setdefault("state", {})["tenant_id"] = request.headers.get("x-demo-tenant")
        return await call_next(request)

    install(app, authz, user=lambda r: r.headers.get("x-demo-tenant"), org=OrgFrom.tenant())
    return app


async def webhooks_demo(app_dsn: str) -> None:
    authz = Authz(MemoryAuthzStore(), Registry(Cap))
    await authz.sync()
    for tenant in ("acme", "globex"):
        await authz.add_user(tenant)
        await authz.add_org(tenant)
        await authz.grant(tenant, Cap.MANAGE, tenant)
        await authz.grant(tenant, Cap.READ, tenant)
    pool = TenantPool(await asyncpg.create_pool(app_dsn, min_size=1, max_size=2))
    transport = httpx.ASGITransport(app=webhooks_app(pool, authz))
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        acme, globex = {"x-demo-tenant": "acme"}, {"x-demo-tenant": "globex"}
        made = await client.post(
            "/webhooks/endpoints", json={"url": "http://127.0.0.1:9/hooks"}, headers=acme
        )
        endpoint = made.json()["id"]
        listed = await client.get("/webhooks/endpoints", headers=acme)
        print("acme's endpoints:", len(listed.json()))
        listed = await client.get("/webhooks/endpoints", headers=globex)
        print("globex's endpoints:", len(listed.json()))
        peek = await client.get(f"/webhooks/endpoints/{endpoint}", headers=globex)
        print("globex reads acme's endpoint:", peek.status_code)
    await pool.close()


def main(admin_dsn: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    database, role = f"tether_tenancy_jobs_{suffix}", f"tether_demo_app_{suffix}"
    base = admin_dsn.rsplit("/", 1)[0]
    owner_dsn = f"{base}/{database}"
    app_dsn = f"postgresql://{role}@{owner_dsn.split('@', 1)[1]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        deploy(owner_dsn, role)
        asyncio.run(jobs_demo(owner_dsn, app_dsn))
        asyncio.run(webhooks_demo(app_dsn))
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
