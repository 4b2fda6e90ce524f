"""Tenant isolation with PostgreSQL row-level security, from deployment to a FastAPI handler.

Run: ``.venv/bin/python examples/tenancy.py [ADMIN_DSN]`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``, a superuser: the example creates a database
and a role, and drops both at the end). ``docs/tenancy.md`` quotes this file;
``tests/integration/tenancy/test_tenancy_example.py`` runs it.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import psycopg
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import String, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.authz import Authz, Registry, SqlAuthzStore
from tether.authz.fastapi import OrgFrom, install, require
from tether.http.tenancy import current_tenant, tenant_session
from tether.outbox import ProducerPolicy, add_event, configure
from tether.store import migrations


# --- deployment, as the tables' owner: migrate, enable row-level security, grant the app -----
def deploy(owner_dsn: str, app_role: str) -> None:
    migrations.upgrade(owner_dsn)
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        conn.execute("SELECT tether_tenancy(true)")
        conn.execute(
            "CREATE TABLE orders (id text PRIMARY KEY, tenant_id text NOT NULL, item text NOT NULL)"
        )
        # The application's own tables can use the same scope: one policy per table.
        conn.execute("ALTER TABLE orders ENABLE ROW LEVEL SECURITY")
        conn.execute(
            "CREATE POLICY orders_tenant ON orders USING (tenant_id = tether_tenant()) "
            "WITH CHECK (tenant_id = tether_tenant())"
        )
        conn.execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON orders, tether_outbox, tether_outbox_keys "
            f'TO "{app_role}"'
        )
        # Capability grants: each tenant's are under the same policy (its org id is the tenant
        # id). Role definitions are shared by every tenant, so only the owner writes them.
        conn.execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON tether_authz_orgs, tether_authz_user_roles, "
            f'tether_authz_user_capabilities TO "{app_role}"'
        )
        conn.execute(f'GRANT SELECT, INSERT ON tether_authz_capabilities TO "{app_role}"')
        # Users are registered, never listed: the registry holds every tenant's user ids.
        conn.execute(f'GRANT INSERT ON tether_authz_users TO "{app_role}"')
        conn.execute(
            "GRANT SELECT ON tether_authz_roles, tether_authz_role_capabilities, "
            f'tether_authz_version TO "{app_role}"'
        )
        conn.execute(f'GRANT UPDATE ON tether_authz_version TO "{app_role}"')


async def define_roles(owner_dsn: str) -> None:
    """The owner's part of authorization: capability names, roles and users."""
    store = SqlAuthzStore.from_url(owner_dsn)
    owner = Authz(store, REGISTRY)
    await owner.sync()
    await owner.define_role("clerk", ["orders:place"])
    for user in ("ann", "bob"):
        await owner.add_user(user)
    await store.close()


# --- the application: every event names its tenant, every session is scoped to it -----------
configure(ProducerPolicy(tenancy=True))
REGISTRY = Registry(["orders:place"])


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    tenant_id: Mapped[str]
    item: Mapped[str]


class PlaceOrder(BaseModel):
    id: str
    item: str


class DemoAuth:
    """Stands in for real authentication: it puts the caller and their tenant in the request
    state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", []))
        for header, key in ((b"x-demo-tenant", "tenant_id"), (b"x-demo-user", "user")):
            if header in headers:
                scope.setdefault("state", {})[key] = headers[header].decode()
        await self.app(scope, receive, send)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


# The caller's tenant (from authentication), and a session scoped to it before the handler runs.
Tenant = Annotated[str, Depends(current_tenant)]
TenantSession = Annotated[AsyncSession, Depends(tenant_session(get_session))]


def create_app(sessions: async_sessionmaker[AsyncSession], authz: Authz) -> FastAPI:
    app = FastAPI()
    app.state.sessions = sessions
    # With tenancy on, the org a capability is checked in is the caller's tenant.
    install(app, authz, user=lambda request: request.state.user, org=OrgFrom.tenant())

    @app.post("/orders", status_code=201, dependencies=[Depends(require("orders:place"))])
    async def place(order: PlaceOrder, tenant: Tenant, session: TenantSession) -> dict[str, str]:
        session.add(Order(id=order.id, tenant_id=tenant, item=order.item))
        await add_event(
            session,
            "OrderPlaced",
            order.model_dump(),
            tenant_id=tenant,
            aggregate_type="order",
            aggregate_id=order.id,
        )
        await session.commit()
        return {"id": order.id}

    @app.get("/events")
    async def events(session: TenantSession) -> list[str]:
        rows = await session.execute(text("SELECT aggregate_id FROM tether_outbox ORDER BY seq"))
        return [str(r[0]) for r in rows]

    app.add_middleware(DemoAuth)
    return app


async def demo(owner_dsn: str, app_dsn: str) -> None:
    await define_roles(owner_dsn)
    engine = create_async_engine(app_dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    # The application's Authz: each tenant's grants, read and written in a scope of its own.
    store = SqlAuthzStore(engine)
    authz = Authz(store, REGISTRY, tenancy=True)
    await authz.add_org("acme")
    await authz.assign_role("ann", "clerk", "acme")
    await authz.add_org("globex")
    await authz.assign_role("bob", "clerk", "globex")
    app = create_app(async_sessionmaker(engine, expire_on_commit=False), authz)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        for user, tenant, order in (
            ("ann", "acme", "o-1"),
            ("bob", "globex", "g-1"),
            ("ann", "acme", "o-2"),
        ):
            who = {"x-demo-tenant": tenant, "x-demo-user": user}
            placed = await client.post("/orders", json={"id": order, "item": "mug"}, headers=who)
            assert placed.status_code == 201, placed.text
        # ann is a clerk in acme only: acme's grants never authorize work in globex.
        who = {"x-demo-tenant": "globex", "x-demo-user": "ann"}
        crossed = await client.post("/orders", json={"id": "x-1", "item": "mug"}, headers=who)
        print("ann in globex:", crossed.status_code, crossed.json()["detail"])
        for tenant in ("acme", "globex"):
            seen = await client.get("/events", headers={"x-demo-tenant": tenant})
            print(f"{tenant} sees: {seen.json()}")
        anonymous = await client.get("/events")
        print("no tenant:", anonymous.status_code, anonymous.json()["detail"])
        bad = await client.get("/events", headers={"x-demo-tenant": "acme corp"})
        print("bad tenant:", bad.status_code, bad.json()["detail"])

    # A session nobody scoped fails closed: it sees no tenant's rows, nor any grant.
    async with engine.connect() as conn:
        unscoped = await conn.scalar(text("SELECT count(*) FROM tether_outbox"))
        print(f"unscoped session sees: {unscoped} events")
        grants = await conn.scalar(text("SELECT count(*) FROM tether_authz_user_roles"))
        print(f"unscoped session sees: {grants} grants")
    await store.close()

    # The relay connects as the owner (or a BYPASSRLS role) and sees every tenant.
    with psycopg.connect(owner_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM tether_outbox").fetchone()
        print(f"the relay's role sees: {row[0] if row else 0} events")


def main(admin_dsn: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    database, role = f"tether_tenancy_demo_{suffix}", f"tether_demo_app_{suffix}"
    base = admin_dsn.rsplit("/", 1)[0]
    owner_dsn = f"{base}/{database}"
    app_dsn = f"postgresql://{role}@{owner_dsn.split('@', 1)[1]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        deploy(owner_dsn, role)
        asyncio.run(demo(owner_dsn, app_dsn))
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
