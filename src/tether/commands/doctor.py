"""``tether doctor``: check an installation end to end; a table (or JSON) of checks and fixes.

Exit codes: 0 when no check failed (warnings allowed), 1 when one did, 2 for bad input.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from tether.commands import common
from tether.core.envelope import check_name
from tether.core.errors import EventValidationError
from tether.ops import doctor as checks

_STYLE = {
    checks.Status.OK: "[green]ok[/]",
    checks.Status.WARN: "[yellow]warn[/]",
    checks.Status.FAIL: "[bold red]FAIL[/]",
    checks.Status.SKIP: "[dim]skip[/]",
}


def render(results: list[checks.Result]) -> Table:
    table = Table(show_lines=False)
    table.add_column("check", style="bold")
    table.add_column("", no_wrap=True)
    table.add_column("detail", overflow="fold")
    table.add_column("fix", overflow="fold")
    for r in results:
        table.add_row(r.name, _STYLE[r.status], _plain(r.detail), _plain(r.fix))
    return table


def _plain(text: str) -> str:
    return text.replace("[", r"\[")


def _topic(value: str) -> str:
    try:
        check_name("probe topic", value, required=True)
    except EventValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def doctor(
    *,
    config: common.ConfigOption = None,
    database_url: common.DatabaseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    end_to_end: Annotated[
        bool,
        typer.Option(
            "--end-to-end/--no-end-to-end",
            help="Write a probe event and wait for a running relay to publish it.",
        ),
    ] = True,
    probe_topic: Annotated[
        str,
        typer.Option("--probe-topic", callback=_topic, help="Topic of the probe event."),
    ] = checks.PROBE_TOPIC,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.5, max=300.0, help="Seconds to wait for the probe."),
    ] = 15.0,
    pending_warn: Annotated[
        float,
        typer.Option("--pending-warn", min=0.0, help="Warn when an event waited this long (s)."),
    ] = 60.0,
    pending_fail: Annotated[
        float,
        typer.Option("--pending-fail", min=0.0, help="Fail when an event waited this long (s)."),
    ] = 600.0,
) -> None:
    """Check the database, schema, relay and sinks; print each check and its fix."""
    if pending_warn > pending_fail:
        common.bad_input("--pending-warn must not exceed --pending-fail")
    cfg = common.settings(config, {"database_url": (database_url, "--database-url")})
    db = common.database(cfg)
    options = checks.Options(
        probe=checks.Probe(topic=probe_topic, timeout=timeout),
        end_to_end=end_to_end,
        pending_warn=pending_warn,
        pending_fail=pending_fail,
    )
    with common.errors_handled(db.url):
        results = common.run(checks.diagnose(cfg, db, options))
    failed = checks.failed(results)
    if as_json:
        body = {"ok": not failed, "database": db.masked, "checks": [r.as_dict() for r in results]}
        common.out.print_json(json.dumps(body))
    else:
        common.out.print(f"tether doctor · {db.masked}", soft_wrap=True, markup=False)
        common.out.print(render(results))
        bad = sum(r.status is checks.Status.FAIL for r in results)
        common.out.print(f"{bad} check(s) failed" if bad else "all checks passed", markup=False)
    if failed:
        raise typer.Exit(common.FAILURE)
