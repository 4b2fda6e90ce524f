"""examples/tenancy.py (quoted by docs/tenancy.md) runs against the real PostgreSQL and prints
that each tenant sees only its events over HTTP, a user's grants in one tenant do not authorize
a request in another, requests without a valid tenant get 403, an unscoped session sees no
event and no grant, and the relay's role sees everything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import services
from tests.support.services import PG_ADMIN_DSN

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(90)
def test_tenancy_example_runs() -> None:
    services.require("postgres")
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tenancy.py"), PG_ADMIN_DSN],
        capture_output=True,
        text=True,
        timeout=80,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in (
        "acme sees: ['o-1', 'o-2']",
        "globex sees: ['g-1']",
        "no tenant: 403 this request has no tenant",
        "bad tenant: 403 this request's tenant id is invalid",
        "ann in globex: 403 Missing capability: orders:place",
        "unscoped session sees: 0 events",
        "unscoped session sees: 0 grants",
        "the relay's role sees: 3 events",
    ):
        assert line in result.stdout, result.stdout


@pytest.mark.timeout(90)
def test_jobs_and_webhooks_example_runs() -> None:
    """examples/tenancy_jobs_webhooks.py: each job runs in its enqueuer's tenant, a tenant's
    store counts its own jobs, and the webhooks routes on one TenantPool keep tenants apart."""
    services.require("postgres")
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tenancy_jobs_webhooks.py"), PG_ADMIN_DSN],
        capture_output=True,
        text=True,
        timeout=80,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "invoice for o-1 in acme (transaction scoped to acme)",
        "invoice for g-1 in globex (transaction scoped to globex)",
        "acme's jobs: 1",
        "acme's endpoints: 1",
        "globex's endpoints: 0",
        "globex reads acme's endpoint: 404",
    ]
