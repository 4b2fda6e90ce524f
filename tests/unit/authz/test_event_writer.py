"""Grant changes reach the injected event writer, in the caller's transaction; the outbox is
one such writer, wired outside authorization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text

from tether import wiring
from tether.authz import Authz, Registry, SqlAuthzStore
from tether.authz.events import EventWriter
from tether.cli import app as tether_app
from tether.commands import caps


class Recorder:
    def __init__(self) -> None:
        self.written: list[tuple[str, str, str, str | None]] = []

    async def write(
        self,
        conn: Any,
        event_type: str,
        payload: dict[str, Any],
        *,
        aggregate_type: str,
        aggregate_id: str,
        tenant_id: str | None,
    ) -> None:
        await conn.execute(text("SELECT 1"))  # the caller's session, inside its transaction
        self.written.append((event_type, aggregate_type, aggregate_id, tenant_id))


async def test_changes_are_written_through_the_injected_writer(tmp_path: Path) -> None:
    recorder = Recorder()
    writer: EventWriter = recorder
    store = SqlAuthzStore.from_url(f"sqlite:///{tmp_path / 'a.db'}", events=writer)
    await store.create_sqlite_schema()
    authz = Authz(store, Registry(["trade:view"]))
    try:
        await authz.sync()
        await authz.add_user("alice")
        await authz.add_org("acme")
        await authz.define_role("viewer", ["trade:view"])
        await authz.grant("alice", "trade:view", "acme")
        await authz.assign_role("alice", "viewer", "acme")
    finally:
        await store.close()
    assert recorder.written == [
        ("tether.capability.role_defined", "role", "viewer", None),
        ("tether.capability.granted", "user", "alice", "acme"),
        ("tether.capability.role_assigned", "user", "alice", "acme"),
    ]


async def test_without_a_writer_no_event_is_written(tmp_path: Path) -> None:
    store = SqlAuthzStore.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    assert store.events is None
    await store.close()


async def test_the_default_wiring_writes_to_the_outbox_on_postgres_only(tmp_path: Path) -> None:
    sqlite = wiring.authz_store(f"sqlite:///{tmp_path / 'a.db'}")
    on_request = wiring.authz_store(f"sqlite:///{tmp_path / 'b.db'}", outbox=True)
    postgres = wiring.authz_store("postgresql://app@127.0.0.1:5432/app")
    try:
        assert sqlite.events is None
        assert isinstance(on_request.events, wiring.OutboxEventWriter)
        assert isinstance(postgres.events, wiring.OutboxEventWriter)
    finally:
        for store in (sqlite, on_request, postgres):
            await store.close()


def test_tether_caps_builds_its_store_through_the_wiring() -> None:
    from tether.authz import cli

    assert cli.open_store is wiring.authz_store
    mounted = {group.name for group in tether_app.registered_groups}
    assert "caps" in mounted
    assert caps.app is cli.app
