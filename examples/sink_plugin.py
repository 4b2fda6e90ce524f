"""A sink from another package: a JSON-lines file, configured and opened by ``tether relay``.

A package ships a ``SinkPlugin`` and declares it as an entry point (see docs/sinks.md, "Adding
a sink"); this script registers it in code instead, so it runs without being installed.

Run: ``.venv/bin/python examples/sink_plugin.py`` (SQLite only, no services). Prints the lines
the relay wrote.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tether.cli import app
from tether.core.envelope import Event
from tether.outbox import add_event_sync
from tether.sinks import registry
from tether.sinks.base import OK, Outcome, Sink
from tether.sinks.log import structured_line
from tether.sinks.registry import SinkPlugin, SinkSettings, hint
from tether.store.sqlite.ddl import migrate_sync


class FileSinkSettings(SinkSettings):
    path: str | None = hint("a file path", default=None, min_length=1)


class FileSink:
    """Appends one CloudEvents JSON line per event to a file."""

    def __init__(self, path: Path) -> None:
        self.name = "file"
        self._path = path

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        with self._path.open("a") as out:
            out.writelines(structured_line(event) + "\n" for event in events)
        return [OK] * len(events)

    async def close(self) -> None:
        pass


async def open_file_sink(settings: FileSinkSettings) -> Sink:
    assert settings.path is not None  # enabled() checked it
    return FileSink(Path(settings.path))


PLUGIN = SinkPlugin(
    "file",
    FileSinkSettings,
    open_file_sink,
    enabled=lambda s: s.path is not None,
    enable_hint="sinks.file.path = <file>",
)


def main() -> None:
    registry.register(PLUGIN)  # an installed package is found through its entry point
    with tempfile.TemporaryDirectory() as tmp:
        db, events = Path(tmp) / "shop.db", Path(tmp) / "events.jsonl"
        conn = sqlite3.connect(db)
        migrate_sync(conn)
        with conn:
            add_event_sync(conn, "order.placed", {"order": "o-1"}, topic="order.placed")
        conn.close()
        config = Path(tmp) / "tether.toml"
        config.write_text(
            f'database_url = "sqlite:///{db}"\n'
            f'[sinks.file]\npath = "{events}"\n'
            '[routes]\n"order.*" = ["file"]\n'
        )
        app(["relay", "--config", str(config), "--drain"], standalone_mode=False)
        written = [json.loads(line) for line in events.read_text().splitlines()]
        print("file sink wrote:", [(e["type"], e["data"]) for e in written])


if __name__ == "__main__":
    main()
