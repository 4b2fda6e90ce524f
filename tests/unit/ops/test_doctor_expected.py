"""The doctor's expectations come from the schema files, never a hard-coded list."""

from __future__ import annotations

from tether.ops.doctor import expected
from tether.ops.doctor.check import Result, Status, failed


def test_parse_reads_tables_indexes_and_storage_settings_and_ignores_comments() -> None:
    schema = expected.parse(
        """
        -- CREATE TABLE not_this (a int);
        CREATE TABLE tether_a (seq bigint);
        CREATE UNIQUE INDEX tether_a_key
            ON tether_a (seq) WHERE seq > 0;
        CREATE TABLE tether_a_default PARTITION OF tether_a DEFAULT;
        ALTER TABLE tether_a SET (autovacuum_vacuum_scale_factor = 0.01,
            autovacuum_vacuum_cost_delay = 0);
        """
    )
    assert schema.tables == ("tether_a", "tether_a_default")
    assert [(i.name, i.table) for i in schema.indexes] == [("tether_a_key", "tether_a")]
    assert schema.indexes[0].statement == (
        "CREATE UNIQUE INDEX tether_a_key ON tether_a (seq) WHERE seq > 0;"
    )
    assert schema.storage == {
        "tether_a": {"autovacuum_vacuum_scale_factor": "0.01", "autovacuum_vacuum_cost_delay": "0"}
    }


def test_the_shipped_schema_names_the_outbox_claim_indexes_and_hot_table_settings() -> None:
    schema = expected.postgres()
    assert {"tether_outbox", "tether_items"} <= set(schema.tables)
    assert {"tether_outbox_live", "tether_outbox_key_live"} <= {i.name for i in schema.indexes}
    assert "autovacuum_vacuum_scale_factor" in schema.storage["tether_outbox"]


def test_only_a_failure_fails_the_run() -> None:
    assert not failed([Result("a", Status.WARN, ""), Result("b", Status.SKIP, "")])
    assert failed([Result("a", Status.OK, ""), Result("b", Status.FAIL, "", "fix")])
    assert Result("a", Status.WARN, "d", "f").as_dict() == {
        "name": "a",
        "status": "warn",
        "detail": "d",
        "fix": "f",
    }
