"""The ``tether`` command: migrate, relay, status, dlq, demo, catalog (and ``caps`` when installed).

Each command lives in :mod:`tether.commands`; this module only assembles them. Settings come
from flags, then ``TETHER_*`` variables, then the ``--config`` TOML file (see
:mod:`tether.config`). Exit codes: 0 ok, 1 runtime failure, 2 bad input.
"""

from __future__ import annotations

import importlib
import logging
from typing import Annotated

import typer

from tether.commands import (  # one per command
    audit,
    catalog,
    common,
    consume,
    dashboard,
    demo,
    dlq,
    doctor,
    lint,
    migrate,
    monitor,
    realtime,
    relay,
    retention,
    runners,
    status,
    worker,
)

app = typer.Typer(
    name="tether",
    help="Reliable events on your own database: transactional outbox, relay, inbox, DLQ.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=common.Boundary,  # every command, mounted ones included: one error line, no traceback
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"tether {version('tether')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """Reliable events on your own database: transactional outbox, relay, inbox, DLQ."""


app.command()(migrate.migrate)
app.command()(relay.relay)
app.command()(status.status)
app.command()(demo.demo)
app.command()(catalog.catalog)
app.command()(retention.retention)
app.command()(worker.worker)
app.command()(realtime.realtime)
app.command()(doctor.doctor)
app.command()(audit.audit)
app.command()(lint.lint)
app.command()(dashboard.dashboard)
app.command()(runners.runners)
app.add_typer(dlq.app, name="dlq")
app.add_typer(consume.app, name="consume")
app.add_typer(monitor.app, name="monitor")


def _mount_optional(module: str, name: str) -> None:
    """Mount a sub-app from another part of Tether if it imports; the CLI works without it."""
    try:
        sub = importlib.import_module(module).app
    except Exception as exc:  # a missing or broken optional part must not break the CLI
        logging.getLogger("tether.cli").debug("%s not mounted: %s", name, exc)
        return
    if isinstance(sub, typer.Typer):
        app.add_typer(sub, name=name)


_mount_optional("tether.commands.caps", "caps")
_mount_optional("tether.commands.jobs", "jobs")
_mount_optional("tether.commands.webhooks", "webhooks")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
