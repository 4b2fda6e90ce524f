"""``tether audit APP``: how many state-changing routes follow the whole pattern
(Idempotency-Key, a capability requirement, a rate limit), read from the live app.

Exit codes: 0, 1 when ``--require`` is not met, 2 for bad input (an app that cannot be loaded).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from tether.commands import common
from tether.core.errors import ConfigError
from tether.lint import audit as route_audit
from tether.lint.loading import load_app


def render(report: route_audit.Report) -> Table:
    table = Table()
    for column in ("method", "path", "idempotency", "capability", "rate limit", ""):
        table.add_column(column, overflow="fold")
    for r in report.routes:
        table.add_row(
            r.method,
            _plain(r.path),
            r.idempotency or "[red]-[/]",
            _plain(", ".join(r.capabilities)) or "[red]-[/]",
            _plain(", ".join(r.rate_limits)) or "[red]-[/]",
            "[green]covered[/]" if r.covered else f"[red]missing {', '.join(r.missing)}[/]",
        )
    return table


def _plain(text: str) -> str:
    return text.replace("[", r"\[")


def audit(
    app: Annotated[str, typer.Argument(help="The app as module:attribute (an app or a factory).")],
    *,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    require: Annotated[
        str | None,
        typer.Option(
            "--require",
            help="Exit 1 unless this many routes are covered: a count (112) or a share (95%).",
        ),
    ] = None,
) -> None:
    """Audit every POST/PUT/PATCH/DELETE route for idempotency, capability and rate limit."""
    try:
        report = route_audit.audit(load_app(app))
        needed = None if require is None else route_audit.parse_requirement(require, report.total)
    except ConfigError as exc:
        common.bad_input(str(exc))
    if as_json:
        body = {**report.as_dict(), "required": needed}
        common.out.print_json(json.dumps(body))
    else:
        common.out.print(render(report))
        common.out.print(report.summary(), markup=False)
    if needed is not None and report.covered < needed:
        common.fail(f"{report.summary()}: fewer than the {needed} required (--require {require})")
