"""``tether demo``: see the outbox, the relay and the inbox work, with no services at all."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.markup import escape

from tether.commands import common
from tether.demo.view import Frame, plain_line, render


class _PlainPrinter:
    """One status line per second, and each timeline note as it happens."""

    def __init__(self) -> None:
        self._next = 0.0
        self._notes = 0
        self._down = False

    def __call__(self, frame: Frame) -> None:
        for at, note in frame.notes[self._notes :]:
            common.out.print(f"{at:5.1f}s >> {note}", soft_wrap=True)
        self._notes = len(frame.notes)
        changed = frame.broker_down != self._down
        self._down = frame.broker_down
        if changed or frame.elapsed >= self._next or frame.phase == "done":
            common.out.print(plain_line(frame), soft_wrap=True)
            self._next = frame.elapsed + 1.0


def demo(
    *,
    duration: Annotated[
        float, typer.Option("--duration", min=2.0, max=600.0, help="Seconds of producing.")
    ] = 15.0,
    rate: Annotated[
        float, typer.Option("--rate", min=1.0, max=2000.0, help="Events produced per second.")
    ] = 50.0,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="SQLite file to use and keep (default: a temporary file)."),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live/--no-live", help="Live view, or plain lines for CI and logs.")
    ] = True,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed for reproducible orders.")
    ] = None,
) -> None:
    """Run a shop, the relay and a consumer in one process on SQLite, through a broker outage."""
    from tether.demo.run import DemoOptions, run_demo

    if db is not None and not db.parent.exists():
        common.bad_input(f"--db {str(db)!r}: folder {str(db.parent)!r} does not exist")
    options = DemoOptions(duration=duration, rate=rate, db=db, seed=seed)
    # The view reports outages itself; the relay's own warnings would scroll it away.
    logging.getLogger("tether.relay").setLevel(logging.ERROR)
    where = escape(f"SQLite {db}") if db else "SQLite (temporary file)"  # a title is markup
    try:
        with common.errors_handled():
            if live and common.out.is_terminal:
                with Live(console=common.out, refresh_per_second=8, transient=False) as view:
                    result = asyncio.run(run_demo(options, lambda f: view.update(render(f, where))))
            else:
                result = asyncio.run(run_demo(options, _PlainPrinter()))
    except KeyboardInterrupt:
        common.err.print("demo interrupted")
        raise typer.Exit(code=130) from None
    style = "bold green" if result.ok else "bold red"
    common.out.print(f"[{style}]{result.closing_line()}[/]", soft_wrap=True)
    if db is not None:
        common.out.print(
            f"Inspect it: tether status --db sqlite:///{db}", soft_wrap=True, markup=False
        )
    if live and common.out.is_terminal:
        common.out.print("Next: put add_event in your own handler: docs/tutorial.md", style="dim")
    if not result.ok:
        raise typer.Exit(code=1)
