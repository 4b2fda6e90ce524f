"""Without the ``metrics`` extra the relay, the worker and the rate limiter import and run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tether.core.errors import ConfigError
from tether.ops import instruments

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import sqlite3
    import sys


    class NoPrometheus:
        def find_spec(self, name, path=None, target=None):
            if name == "prometheus_client" or name.startswith("prometheus_client."):
                raise ImportError(f"{name} is blocked in this test")
            return None


    sys.meta_path.insert(0, NoPrometheus())

    import tether.http.ratelimit
    import tether.queue.worker
    from tether.ops import instruments, metrics
    from tether.outbox import add_event_sync
    from tether.outbox.relay import Relay
    from tether.outbox.store_sqlite import SqliteOutboxStore
    from tether.sinks.memory import MemorySink
    from tether.store.sqlite.ddl import migrate_sync

    assert not instruments.ENABLED
    assert "prometheus_client" not in sys.modules
    metrics.RELAY_EVENTS.labels("published").inc(3)


    async def main(path):
        conn = sqlite3.connect(path)
        migrate_sync(conn)
        with conn:
            add_event_sync(conn, "order.placed", {"id": 1})
        conn.close()
        store = await SqliteOutboxStore.connect(path)
        sink = MemorySink()
        try:
            report = await Relay(store, [sink]).run_once()
        finally:
            await store.close()
        print(report.published, len(sink.events))


    asyncio.run(main(sys.argv[1]))
    """
)


def test_relay_worker_and_rate_limiter_run_without_prometheus(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "app.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]


def test_the_port_records_with_prometheus_installed() -> None:
    assert instruments.ENABLED
    from prometheus_client import REGISTRY

    before = REGISTRY.get_sample_value("tether_relay_errors_total") or 0.0
    from tether.ops import metrics

    metrics.RELAY_ERRORS.inc()
    assert REGISTRY.get_sample_value("tether_relay_errors_total") == before + 1


def test_serving_metrics_without_prometheus_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(instruments, "_PROMETHEUS", None)
    with pytest.raises(ConfigError, match=r"tether\[metrics\]"):
        instruments.serve(9108)
