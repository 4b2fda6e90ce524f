"""What the demo shows: a live Rich panel, or one plain line per second for logs and CI."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

INTRO = (
    "A shop writes each order and its event in ONE SQLite transaction (add_event). "
    "The relay publishes events to an in-memory broker; the shipping consumer handles "
    "each event once, recording its id in the inbox in the same transaction as its work."
)


@dataclass(slots=True)
class Frame:
    """Everything the view shows at one moment."""

    elapsed: float = 0.0
    duration: float = 0.0
    phase: str = "producing"
    produced: int = 0
    delivered: int = 0
    duplicates: int = 0
    pending: int = 0
    retrying: int = 0
    dead: int = 0
    lag: float | None = None
    throughput: float = 0.0
    broker_down: bool = False
    relay_retried: int = 0
    relay_deferred: int = 0
    notes: list[tuple[float, str]] = field(default_factory=list)


def _broker(frame: Frame) -> Text:
    if frame.broker_down:
        return Text("DOWN (simulated outage)", style="bold red")
    return Text("UP", style="bold green")


def _lag(frame: Frame) -> str:
    return "-" if frame.lag is None else f"{frame.lag:.2f}s"


def render(frame: Frame, where: str) -> RenderableType:
    counts = Table.grid(padding=(0, 3))
    for _ in range(4):
        counts.add_column(justify="left")
    counts.add_row(
        f"produced [bold]{frame.produced:,}[/]",
        f"delivered [bold green]{frame.delivered:,}[/]",
        f"pending [bold]{frame.pending:,}[/]",
        f"retrying [bold yellow]{frame.retrying:,}[/]",
    )
    counts.add_row(
        f"dead [bold red]{frame.dead:,}[/]",
        f"lag (oldest pending) [bold]{_lag(frame)}[/]",
        f"throughput [bold]{frame.throughput:,.0f}/s[/]",
        Text.assemble("broker ", _broker(frame)),
    )
    legend = Text(
        "pending: committed, not yet published · retrying: failed or deferred, waiting for its "
        "next try · lag: age of the oldest pending event",
        style="dim",
    )
    relay = Text(
        f"relay: {frame.relay_retried} retried (attempt spent) · {frame.relay_deferred} deferrals "
        f"while the broker was down (no attempt spent) · inbox dropped {frame.duplicates} "
        "duplicate deliveries",
        style="dim",
    )
    total = max(frame.duration, frame.elapsed, 0.001)
    bar = ProgressBar(total=total, completed=total if frame.phase == "done" else frame.elapsed)
    timeline = Table.grid(padding=(0, 2))
    timeline.add_column(justify="right", style="cyan")
    timeline.add_column()
    for at, note in frame.notes[-6:]:
        timeline.add_row(f"{at:5.1f}s", note)
    body = Group(
        Text(INTRO, style="italic"),
        Text(""),
        counts,
        legend,
        relay,
        Text(""),
        Text.assemble(f"{frame.phase} ", (f"{frame.elapsed:.1f}s / {frame.duration:.0f}s", "dim")),
        bar,
        Text(""),
        timeline,
    )
    return Panel(body, title=f"tether demo · {where}", title_align="left")


def plain_line(frame: Frame) -> str:
    broker = "DOWN" if frame.broker_down else "up"
    return (
        f"{frame.elapsed:5.1f}s {frame.phase:<9} produced={frame.produced} "
        f"delivered={frame.delivered} pending={frame.pending} retrying={frame.retrying} "
        f"dead={frame.dead} lag={_lag(frame)} throughput={frame.throughput:.0f}/s "
        f"broker={broker} duplicates_dropped={frame.duplicates}"
    )
