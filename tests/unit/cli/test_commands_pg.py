"""Every command's happy path against a fresh PostgreSQL database with Tether's schema."""

from __future__ import annotations

import json

import psycopg
from typer.testing import CliRunner

from tests.unit.cli.conftest import invoke, seed


def states(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT state, count(*) FROM tether_outbox GROUP BY state").fetchall()
    return {str(state): int(n) for state, n in rows}


def test_migrate_empty_database_to_all_heads(cli: CliRunner, empty_pg_dsn: str) -> None:
    result = invoke(cli, "migrate", "--db", empty_pg_dsn)
    assert result.exit_code == 0, result.output
    assert "schema at" in result.stdout and "(heads)" in result.stdout
    again = invoke(cli, "migrate", "--db", empty_pg_dsn)
    assert again.exit_code == 0 and again.stdout == result.stdout
    assert states(empty_pg_dsn) == {}


def test_status_table_and_json(cli: CliRunner, pg_dsn: str) -> None:
    seed(pg_dsn, 6, dead={0, 1})
    table = invoke(cli, "status", "--db", pg_dsn, "--window", "0.05")
    assert table.exit_code == 0, table.output
    for label in ("pending", "in flight", "retrying", "dead", "oldest pending", "delivered/s"):
        assert label in table.stdout
    data = json.loads(invoke(cli, "status", "--db", pg_dsn, "--json", "--window", "0").stdout)
    assert data["pending"] == 4 and data["dead"] == 2 and data["in_flight"] == 0
    assert data["oldest_pending_age_seconds"] >= 0
    assert data["delivered_per_second"] is None


def test_status_counts_rows_locked_by_a_relay_as_in_flight(cli: CliRunner, pg_dsn: str) -> None:
    seed(pg_dsn, 4)
    with psycopg.connect(pg_dsn) as relay_like:
        relay_like.execute(
            "SELECT seq FROM tether_outbox ORDER BY seq LIMIT 3 FOR UPDATE SKIP LOCKED"
        ).fetchall()
        data = json.loads(invoke(cli, "status", "--db", pg_dsn, "--json", "--window", "0").stdout)
    assert (data["in_flight"], data["pending"]) == (3, 1)
    after = json.loads(invoke(cli, "status", "--db", pg_dsn, "--json", "--window", "0").stdout)
    assert (after["in_flight"], after["pending"]) == (0, 4)  # the lock ended with its transaction


def test_status_measures_throughput(cli: CliRunner, pg_dsn: str) -> None:
    seed(pg_dsn, 2)
    result = invoke(cli, "status", "--db", pg_dsn, "--json", "--window", "0.05")
    data = json.loads(result.stdout)
    assert data["produced_per_second"] == 0.0 and data["delivered_per_second"] == 0.0


def test_dlq_list_filters_and_show(cli: CliRunner, pg_dsn: str) -> None:
    ids = seed(pg_dsn, 6, dead={0, 1, 4})
    listed = json.loads(invoke(cli, "dlq", "list", "--db", pg_dsn, "--json").stdout)
    assert [e["id"] for e in listed] == [ids[0], ids[1], ids[4]]
    by_type = json.loads(
        invoke(cli, "dlq", "list", "--db", pg_dsn, "--json", "--type", "OrderPaid").stdout
    )
    assert [e["id"] for e in by_type] == [ids[1]]
    by_tenant = invoke(
        cli,
        "dlq",
        "list",
        "--db",
        pg_dsn,
        "--json",
        "--tenant",
        "globex",
        "--error-contains",
        "503",
    )
    assert [e["id"] for e in json.loads(by_tenant.stdout)] == [ids[4]]
    by_agg = invoke(
        cli, "dlq", "list", "--db", pg_dsn, "--json", "--aggregate-id", "o0", "--topic", "order"
    )
    assert [e["id"] for e in json.loads(by_agg.stdout)] == [ids[0]]
    assert json.loads(invoke(cli, "dlq", "list", "--db", pg_dsn, "--json", "--after", "1h").stdout)
    assert (
        json.loads(invoke(cli, "dlq", "list", "--db", pg_dsn, "--json", "--before", "1h").stdout)
        == []
    )
    table = invoke(cli, "dlq", "list", "--db", pg_dsn)
    assert table.exit_code == 0 and ids[0] in table.stdout and "3 dead event(s)" in table.stdout
    shown = invoke(cli, "dlq", "show", ids[4], "--db", pg_dsn)
    assert shown.exit_code == 0, shown.output
    assert "HTTP 503 from billing [upstream]" in shown.stdout  # data, not Rich markup
    assert "error history" in shown.stdout
    assert json.loads(invoke(cli, "dlq", "show", ids[4], "--db", pg_dsn, "--json").stdout)[
        "payload"
    ] == {"order": 4}


def test_dlq_show_unknown_or_live_id(cli: CliRunner, pg_dsn: str) -> None:
    ids = seed(pg_dsn, 3, dead={0})
    result = invoke(cli, "dlq", "show", "01a2088b-650b-7332-a76c-c65c43c1c36f", "--db", pg_dsn)
    assert result.exit_code == 1 and "no dead item with id" in result.stderr
    pending = invoke(cli, "dlq", "show", ids[1], "--db", pg_dsn)  # not a dead letter
    assert pending.exit_code == 1 and f"no dead item with id {ids[1]}" in pending.stderr


def test_dlq_replay_needs_confirmation_then_replays(cli: CliRunner, pg_dsn: str) -> None:
    ids = seed(pg_dsn, 6, dead={0, 1, 4})
    refused = invoke(cli, "dlq", "replay", "--tenant", "acme", "--db", pg_dsn)
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr
    assert states(pg_dsn)["dead"] == 3
    done = invoke(cli, "dlq", "replay", "--tenant", "acme", "--yes", "--db", pg_dsn)
    assert done.exit_code == 0, done.output
    assert "Replayed 2 event(s)" in done.stdout and "2/2" in done.stdout
    assert states(pg_dsn) == {"pending": 5, "dead": 1}
    single = invoke(cli, "dlq", "replay", "--id", ids[4], "--db", pg_dsn)  # one id: no prompt
    assert single.exit_code == 0 and "Replayed 1 event(s)" in single.stdout
    nothing = invoke(cli, "dlq", "replay", "--yes", "--db", pg_dsn)
    assert nothing.exit_code == 0 and "nothing to replay" in nothing.stdout


def test_dlq_purge(cli: CliRunner, pg_dsn: str) -> None:
    seed(pg_dsn, 6, dead={0, 1, 4})
    refused = invoke(cli, "dlq", "purge", "--db", pg_dsn)
    assert refused.exit_code == 2 and "Purge 3 dead event(s)?" in refused.stderr
    done = invoke(cli, "dlq", "purge", "--type", "OrderPlaced", "--yes", "--db", pg_dsn)
    assert done.exit_code == 0 and "Purged 2 dead event(s)" in done.stdout
    assert states(pg_dsn) == {"pending": 3, "dead": 1}


def test_relay_drains_to_the_log_sink(cli: CliRunner, pg_dsn: str) -> None:
    ids = seed(pg_dsn, 5)
    result = invoke(cli, "relay", "--db", pg_dsn, "--log-sink", "--drain", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["id"] for e in lines] == ids
    assert "relay stopped: 5 published" in result.stderr
    assert states(pg_dsn) == {}


def test_relay_routes_from_config_file(cli: CliRunner, pg_dsn: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed(pg_dsn, 2)
    config = tmp_path / "tether.toml"
    config.write_text(
        f'database_url = "{pg_dsn}"\n[sinks.log]\nenabled = true\n[routes]\n"nothing.*" = ["log"]\n'
    )
    result = invoke(cli, "relay", "--config", str(config), "--drain")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # no route matched: dead-lettered, never silently dropped
    assert states(pg_dsn) == {"dead": 2}


def test_migrate_explains_a_schema_installed_without_alembic(cli: CliRunner, pg_dsn: str) -> None:
    # pg_dsn's schema comes from the plain SQL file, with no Alembic record.
    refused = invoke(cli, "migrate", "--db", pg_dsn)
    assert refused.exit_code == 1, refused.output
    assert "tether migrate --stamp" in refused.stderr and "Traceback" not in refused.output
    stamped = invoke(cli, "migrate", "--db", pg_dsn, "--stamp")
    assert stamped.exit_code == 0 and "(heads)" in stamped.stdout
    assert invoke(cli, "migrate", "--db", pg_dsn).exit_code == 0
