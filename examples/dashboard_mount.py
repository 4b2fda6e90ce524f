"""The admin dashboard mounted in a FastAPI app: log in, find a dead job, replay it, see the
runners.

Run: ``.venv/bin/python examples/dashboard_mount.py [ADMIN_DSN]`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``): it creates a scratch database, applies
Tether's migrations, and drops the database at the end. The requests go through httpx's ASGI
transport; ``uvicorn example:app`` would serve the same app to a browser.
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid

import asyncpg
import httpx
from fastapi import FastAPI

from tether.authz import Authz, Registry, SqlAuthzStore
from tether.dashboard import DashboardSettings, OpsCap, TokenUsers, create_dashboard, digest
from tether.jobs import JobRegistry, Jobs, JobStore, JobWorker
from tether.ops.runners import Heartbeat, PostgresRunnerRegistry
from tether.store import migrations

jobs_registry = JobRegistry()
attempts: list[int] = []


@jobs_registry.job(name="sync_invoice", max_attempts=1)
async def sync_invoice(invoice: int) -> str:
    attempts.append(invoice)
    if len(attempts) == 1:
        raise ConnectionError("ledger unreachable")
    return f"invoice {invoice} synced"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def demo(dsn: str) -> None:
    # 1. Capabilities: ops:view to look, ops:replay / ops:purge to act.
    store = SqlAuthzStore.from_url(dsn)
    authz = Authz(store, Registry(OpsCap))
    await authz.sync()
    await authz.add_user("ana")
    await authz.grant("ana", OpsCap.VIEW)
    await authz.grant("ana", OpsCap.REPLAY)

    # 2. Login tokens are kept as SHA-256 digests; the secret key signs the session cookie.
    users = TokenUsers({digest("ana-personal-token-7d1e0c"): "ana"})
    settings = DashboardSettings(dsn, secret_key="x" * 48, users=users)
    app = FastAPI()
    dashboard = create_dashboard(settings, authz)
    app.mount("/ops", dashboard)

    # 3. A job that fails once: with one attempt allowed, it is a dead letter.
    job_store = await JobStore.connect(dsn)
    jobs = Jobs(job_store, jobs_registry)
    await jobs.enqueue("sync_invoice", {"invoice": 42})
    worker = JobWorker(jobs)
    while await worker.run_once():
        pass

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ops.local") as client:
        page = await client.get("/ops/login")
        await client.post(
            "/ops/login", data={"token": "ana-personal-token-7d1e0c", "csrf": csrf_of(page.text)}
        )
        listing = await client.get("/ops/dead", params={"kind": "jobs", "error": "ledger"})
        ids = re.findall(r'class="dead-row" data-id="([^"]+)"', listing.text)
        print("dead jobs:", len(ids), "ledger unreachable" in listing.text)

        # 4. Replay: a confirmation page with the count, then the action (POST, CSRF token).
        token = csrf_of(listing.text)
        form = {"csrf": token, "action": "replay", "scope": "selected", "kind": "jobs"}
        confirm = await client.post("/ops/actions/confirm", data={**form, "id": ids})
        shown_at = re.search(r'name="shown_at" value="([^"]+)"', confirm.text)
        assert shown_at
        done = await client.post(
            "/ops/actions/run", data={**form, "id": ids, "shown_at": shown_at.group(1)}
        )
        print("replay:", done.status_code, (await client.get(done.headers["location"])).status_code)

        # 5. Runners beat into the registry (the database's: the dashboard reads it by default);
        #    the overview lists each one, idle ones too, with its status and key figures.
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        runners = PostgresRunnerRegistry(pool)
        stats = {"done_total": 1.0, "in_flight": 0.0}
        async with Heartbeat(runners, "job-worker", "invoices-worker", stats=lambda: stats):
            overview = await client.get("/ops/")
            row = re.search(r'data-name="invoices-worker" data-status="(\w+)"', overview.text)
            print("runner:", row.group(1) if row else None)
        await pool.close()
    while await worker.run_once():
        pass
    print("result:", await job_store.result(uuid.UUID(ids[0])))
    await dashboard.state.dashboard.db.close()  # the pool it opened on first use
    await job_store.close()
    await store.close()


async def main(admin_dsn: str) -> None:
    name = f"tether_example_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(migrations.upgrade, dsn)
        await demo(dsn)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
    )
