"""Capability grants under row-level security through the HTTP helpers and ``tether caps
--tenant``, as the application role: a request authenticated for tenant A is decided with A's
grants only and its scoped session reads A's grants and archived events only; an org named by the request that is
not its tenant is refused; no tenant or a bad one is refused; the CLI lists, grants, explains
and revokes inside one tenant, refuses a bad tenant or a mismatched --org before writing, and
without a tenant lists nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import psycopg
import pytest
from fastapi import Depends, FastAPI, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from typer.testing import CliRunner

from tests.support.tenancy import TenancyDb, authz_on, seed_grants, tenancy_database
from tests.unit.cli.conftest import invoke
from tether.authz import Authz
from tether.authz.fastapi import OrgFrom, install, require
from tether.http.tenancy import tenant_session

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def db() -> Iterator[TenancyDb]:
    with tenancy_database() as created:
        asyncio.run(seed_grants(created))
        with psycopg.connect(created.admin, autocommit=True) as conn:
            for tenant in ("acme", "acme", "globex"):  # archived events (published, kept)
                conn.execute(
                    "INSERT INTO tether_outbox_archive (seq, id, attempts, created_at,"
                    " finished_at, done_sinks, errors, tenant_id, topic, type, version, source,"
                    " payload) VALUES (1, gen_random_uuid(), 1, now(), now(), '{}', '[]', %s,"
                    " 'orders', 'OrderPlaced', 1, 'test', '{}')",
                    (tenant,),
                )
        yield created


def authenticated(app: Any) -> Any:
    """Stands in for authentication middleware: the user and tenant it would establish."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            state = scope.setdefault("state", {})
            for name, key in ((b"x-test-user", "user"), (b"x-test-tenant", "tenant_id")):
                if name in headers:
                    state[key] = headers[name].decode()
        await app(scope, receive, send)

    return asgi


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session, session.begin():
        yield session


# Module level: the route's annotations are strings, resolved in this module's namespace.
TenantSession = Annotated[AsyncSession, Depends(tenant_session(get_session))]


def build(authz: Authz, dsn: str, org: Any) -> FastAPI:
    app = FastAPI()
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"))
    app.state.sessions = async_sessionmaker(engine)

    install(app, authz, user=lambda r: r.scope["state"].get("user"), org=org)

    @app.get("/approve", dependencies=[Depends(require("trade:approve"))])
    async def approve() -> str:
        return "approved"

    @app.get("/grants")
    async def grants(session: TenantSession) -> list[str]:
        rows = await session.execute(
            text("SELECT user_id || ' ' || capability FROM tether_authz_user_capabilities")
        )
        return sorted(rows.scalars())

    @app.get("/archived")
    async def archived(session: TenantSession) -> int:
        return int(await session.scalar(text("SELECT count(*) FROM tether_outbox_archive")) or 0)

    app.state.engine = engine
    return app


async def call(app: FastAPI, path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=authenticated(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers={k.replace("_", "-"): v for k, v in headers.items()})


async def test_requests_are_decided_and_read_in_their_own_tenant(db: TenancyDb) -> None:
    async with authz_on(db.app) as authz:
        app = build(authz, db.app, OrgFrom.tenant())
        try:
            ok = await call(app, "/approve", x_test_user="asha", x_test_tenant="acme")
            assert (ok.status_code, ok.json()) == (200, "approved")
            other = await call(app, "/approve", x_test_user="asha", x_test_tenant="globex")
            assert other.status_code == 403
            assert other.json()["detail"] == "Missing capability: trade:approve"
            # A platform-wide admin:all applies to no tenant.
            ops = await call(app, "/approve", x_test_user="ops", x_test_tenant="acme")
            assert ops.status_code == 403
            for tenant in (None, "acme corp", "../x"):
                headers = {"x_test_user": "meera"} | ({"x_test_tenant": tenant} if tenant else {})
                refused = await call(app, "/approve", **headers)
                assert refused.status_code == 403, tenant
            # The scoped session reads its tenant's grants only.
            acme = await call(app, "/grants", x_test_tenant="acme")
            assert acme.json() == ["asha trade:approve", "meera admin:all"]
            globex = await call(app, "/grants", x_test_tenant="globex")
            assert globex.json() == ["asha trade:view"]
            assert (await call(app, "/grants")).status_code == 403
            # The same scope keeps the archive apart.
            assert (await call(app, "/archived", x_test_tenant="acme")).json() == 2
            assert (await call(app, "/archived", x_test_tenant="globex")).json() == 1
        finally:
            await app.state.engine.dispose()


async def test_an_org_named_by_the_request_must_be_its_tenant(db: TenancyDb) -> None:
    async with authz_on(db.app) as authz:
        app = build(authz, db.app, OrgFrom.header("X-Org-Id"))
        try:
            mine = await call(
                app, "/approve", x_test_user="asha", x_test_tenant="acme", x_org_id="acme"
            )
            assert mine.status_code == 200
            # meera is super-admin in acme; authenticated there, she cannot act in globex by
            # naming it: the grants of one tenant never authorize another tenant's request.
            for user in ("meera", "asha"):
                crossed = await call(
                    app, "/approve", x_test_user=user, x_test_tenant="acme", x_org_id="globex"
                )
                assert crossed.status_code == 403
                assert crossed.json()["detail"] == "this request's organization is not its tenant"
        finally:
            await app.state.engine.dispose()


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def direct_grants(dsn: str) -> set[tuple[str, str | None, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT user_id, org_id, capability FROM tether_authz_user_capabilities"
        ).fetchall()
    return {(str(u), o, str(c)) for u, o, c in rows}


def test_caps_with_a_tenant_stays_inside_it(cli: CliRunner, db: TenancyDb) -> None:
    before = direct_grants(db.admin)
    listed = invoke(cli, "caps", "list", "--db", db.app, "--tenant", "acme")
    assert listed.exit_code == 0, listed.output
    assert "trade:approve" in listed.stdout and "admin:all" in listed.stdout
    assert "globex" not in listed.stdout and "trader" not in listed.stdout
    empty = invoke(cli, "caps", "list", "--db", db.app)  # no tenant: nothing
    assert empty.exit_code == 0 and "asha" not in empty.stdout
    explained = invoke(
        cli, "caps", "explain", "asha", "trade:view", "--db", db.app, "--tenant", "acme"
    )
    assert explained.exit_code == 3 and "no grant" in explained.stdout
    # Revoking in acme what only globex holds finds nothing there.
    revoke = invoke(cli, "caps", "revoke", "asha", "trade:view", "--db", db.app, "--tenant", "acme")
    assert revoke.exit_code == 1 and "no direct grant" in revoke.output
    assert direct_grants(db.admin) == before
    granted = invoke(cli, "caps", "grant", "ravi", "trade:view", "--db", db.app, "--tenant", "acme")
    assert granted.exit_code == 0, granted.output
    try:
        assert direct_grants(db.admin) == before | {("ravi", "acme", "trade:view")}
    finally:
        undone = invoke(
            cli, "caps", "revoke", "ravi", "trade:view", "--db", db.app, "--tenant", "acme"
        )
        assert undone.exit_code == 0, undone.output


@pytest.mark.parametrize(
    "args",
    # More malformed ids are refused through the Python API (test_rls_grants.py); here the
    # command's own checks, before it opens the database.
    [("--tenant", "acme corp"), ("--tenant", "acme", "--org", "globex")],
)
def test_caps_refuses_a_bad_tenant_before_writing(
    cli: CliRunner, db: TenancyDb, args: tuple[str, ...]
) -> None:
    before = direct_grants(db.admin)
    for command in (
        ("grant", "asha", "trade:view"),
        ("revoke", "asha", "trade:approve"),
        ("list",),
    ):
        result = invoke(cli, "caps", *command, "--db", db.app, *args)
        assert result.exit_code == 2, result.output
        assert "--tenant" in result.output or "--org" in result.output
    assert direct_grants(db.admin) == before
