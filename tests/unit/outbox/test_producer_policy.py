"""The process-wide producer policy applies to every add_event call; bad input writes nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.core.errors import ConfigError, EventValidationError
from tether.outbox import ProducerPolicy, add_event_sync, configure
from tether.store.drivers import NotInTransactionError
from tether.store.sqlite.ddl import migrate_sync


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "p.db")
    migrate_sync(conn)
    yield conn
    conn.close()


@pytest.fixture
def strict() -> Iterator[None]:
    previous = configure(ProducerPolicy(require_tenant=True, max_payload_bytes=100, source="shop"))
    yield
    configure(previous)


def count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM tether_outbox").fetchone()[0])


def test_policy_requires_tenant_and_limits_payload(db: sqlite3.Connection, strict: None) -> None:
    with pytest.raises(EventValidationError, match="tenant_id is required"):
        add_event_sync(db, "OrderPlaced", {})
    with pytest.raises(EventValidationError, match="over the limit of 100 bytes"):
        add_event_sync(db, "OrderPlaced", {"x": "y" * 200}, tenant_id="acme")
    ref = add_event_sync(db, "OrderPlaced", {}, tenant_id="acme")
    db.commit()
    assert count(db) == 1
    assert ref.event.source == "shop"


def test_invalid_policy_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_payload_bytes"):
        ProducerPolicy(max_payload_bytes=0)


def test_idempotency_key_returns_the_first_event(db: sqlite3.Connection) -> None:
    first = add_event_sync(db, "OrderPlaced", {"n": 1}, tenant_id="a", idempotency_key="k")
    again = add_event_sync(db, "OrderPlaced", {"n": 2}, tenant_id="a", idempotency_key="k")
    other = add_event_sync(db, "OrderPlaced", {"n": 3}, tenant_id="b", idempotency_key="k")
    db.commit()
    assert first.created and not again.created and other.created
    assert again.id == first.id and other.id != first.id
    assert count(db) == 2


def test_rollback_leaves_no_event(db: sqlite3.Connection) -> None:
    add_event_sync(db, "OrderPlaced", {})
    db.rollback()
    assert count(db) == 0


def test_autocommit_connection_without_transaction_is_refused_on_postgres(pg_dsn: str) -> None:
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        with pytest.raises(NotInTransactionError, match="autocommit"):
            add_event_sync(conn, "OrderPlaced", {})


def test_unknown_handle_is_named() -> None:
    with pytest.raises(Exception, match="cannot write through a dict"):
        add_event_sync({}, "OrderPlaced", {})
