"""``tether retention`` on PostgreSQL: with ``--tenant`` only that tenant's old published rows,
dead letters and idempotency keys go, as the owner or as an application role under row-level
security; ``--dry-run`` counts and deletes nothing; ``--archive`` drops the archive's months."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from typer.testing import CliRunner

from tests.support.tenancy import TenancyDb, tenancy_database
from tests.unit.cli.conftest import invoke
from tether.outbox import add_event_sync

pytestmark = pytest.mark.timeout(120)

# Per tenant: n0 old published, n1 new published, n2 old dead, n3 new dead, n4 pending;
# the keys of n0 and n2 are old.
_ROWS = 5


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


@pytest.fixture
def db() -> Iterator[TenancyDb]:
    with tenancy_database() as created:
        with psycopg.connect(created.admin) as conn:
            for tenant in ("acme", "globex"):
                for n in range(_ROWS):
                    add_event_sync(
                        conn, "E", {"n": n}, tenant_id=tenant, idempotency_key=f"{tenant}-{n}"
                    )
            conn.execute(
                """UPDATE tether_outbox SET
                     state = CASE WHEN (payload->>'n')::int IN (0, 1) THEN 'done'
                                  WHEN (payload->>'n')::int IN (2, 3) THEN 'dead'
                                  ELSE 'pending' END,
                     finished_at = CASE WHEN (payload->>'n')::int IN (0, 2)
                                        THEN now() - interval '60 days'
                                        WHEN (payload->>'n')::int IN (1, 3) THEN now() END"""
            )
            conn.execute(
                "UPDATE tether_outbox_keys SET created_at = now() - interval '60 days' "
                "WHERE key LIKE '%-0' OR key LIKE '%-2'"
            )
        yield created


def left(dsn: str) -> dict[str, tuple[list[int], list[str]]]:
    """Per tenant: the rows' ``n`` left in the outbox and the keys left."""
    out: dict[str, tuple[list[int], list[str]]] = {}
    with psycopg.connect(dsn) as conn:
        for tenant in ("acme", "globex"):
            rows = conn.execute(
                "SELECT (payload->>'n')::int FROM tether_outbox WHERE tenant_id = %s ORDER BY 1",
                (tenant,),
            ).fetchall()
            keys = conn.execute(
                "SELECT key FROM tether_outbox_keys WHERE tenant_id = %s ORDER BY 1", (tenant,)
            ).fetchall()
            out[tenant] = ([int(r[0]) for r in rows], [str(k[0]) for k in keys])
    return out


_ALL = ([0, 1, 2, 3, 4], [f"{{t}}-{n}" for n in range(_ROWS)])


def untouched(tenant: str) -> tuple[list[int], list[str]]:
    return _ALL[0], [k.format(t=tenant) for k in _ALL[1]]


def retention(cli: CliRunner, dsn: str, *args: str) -> dict[str, object]:
    result = invoke(cli, "retention", "--db", dsn, "--json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


@pytest.mark.parametrize("role", ["app", "admin"])
def test_one_tenant_swept_the_other_kept(cli: CliRunner, db: TenancyDb, role: str) -> None:
    dsn = db.app if role == "app" else db.admin
    report = retention(cli, dsn, "--tenant", "acme", "--published", "30d", "--dead", "30d")
    assert report == {
        "dry_run": False,
        "tenant": "acme",
        "published": 1,
        "dead": 1,
        "idempotency_keys": 2,
        "archived_months": [],
    }
    after = left(db.admin)
    assert after["acme"] == ([1, 3, 4], ["acme-1", "acme-3", "acme-4"])
    assert after["globex"] == untouched("globex")


def test_dry_run_counts_and_deletes_nothing(cli: CliRunner, db: TenancyDb) -> None:
    every = retention(cli, db.admin, "--dry-run")
    assert (every["published"], every["dead"], every["idempotency_keys"]) == (2, 2, 4)
    one = retention(cli, db.app, "--dry-run", "--tenant", "globex", "--dead", "never")
    assert (one["published"], one["dead"], one["idempotency_keys"]) == (1, None, 2)
    assert one["dry_run"] is True
    assert left(db.admin) == {"acme": untouched("acme"), "globex": untouched("globex")}
    text = invoke(cli, "retention", "--db", db.admin, "--dry-run")
    assert text.exit_code == 0 and "would remove" in text.stdout


def test_every_tenant_and_dead_kept_forever(cli: CliRunner, db: TenancyDb) -> None:
    report = retention(cli, db.admin, "--dead", "never")
    assert (report["published"], report["dead"], report["idempotency_keys"]) == (2, None, 4)
    for tenant in ("acme", "globex"):
        assert left(db.admin)[tenant][0] == [1, 2, 3, 4]


_COLUMNS = (
    "seq, id, partition_key, attempts, created_at, finished_at, done_sinks, errors, tenant_id, "
    "topic, type, version, aggregate_type, aggregate_id, source, payload, user_id, "
    "correlation_id, causation_id, traceparent, idempotency_key"
)


def test_archive_rows_dropped(cli: CliRunner, db: TenancyDb) -> None:
    with psycopg.connect(db.admin) as conn:
        conn.execute(
            f"INSERT INTO tether_outbox_archive ({_COLUMNS}) SELECT {_COLUMNS} FROM tether_outbox "
            "WHERE state = 'done' AND finished_at < now() - interval '30 days'"
        )
    dry = retention(cli, db.admin, "--archive", "--dry-run", "--published", "30d")
    # The hot table's two and the archive's two (no month partition that old: the default's).
    assert dry["published"] == 4
    report = retention(cli, db.admin, "--archive", "--published", "30d")
    assert report["published"] == dry["published"]
    assert report["archived_months"] == dry["archived_months"]
    with psycopg.connect(db.admin) as conn:
        row = conn.execute(
            "SELECT count(*) FROM tether_outbox_archive WHERE finished_at < now() - interval '30 days'"
        ).fetchone()
    assert row is not None and row[0] == 0


def test_tenant_with_archive_refused(cli: CliRunner, db: TenancyDb) -> None:
    result = invoke(cli, "retention", "--db", db.app, "--tenant", "acme", "--archive")
    assert result.exit_code == 2 and "every tenant" in result.stderr
