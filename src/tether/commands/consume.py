"""``tether consume dlq``: list and replay what consumers dead-lettered on a broker.

The broker adapters live in :mod:`tether.consume`; :mod:`tether.consume.boxes` opens the one
named (the dashboard's consumer dead-letter page opens them the same way), importing it only
then, so the command works with just the extras of the brokers in use.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tether.commands import common
from tether.consume import boxes
from tether.consume.boxes import Broker
from tether.consume.port import DeadLetter, DeadLetterBox
from tether.core import redact

app = typer.Typer(help="Consumers' dead letters on the broker.", no_args_is_help=True)
dlq = typer.Typer(help="List and replay a consumer's dead letters.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")


BrokerOpt = Annotated[Broker, typer.Option("--broker", help="Which broker.", show_default=False)]
UrlOpt = Annotated[
    str,
    typer.Option("--url", envvar="TETHER_CONSUME_URL", help="Broker URL.", show_default=False),
]
SourceOpt = Annotated[str, typer.Option("--source", help=boxes.SOURCE_HELP, show_default=False)]
ConsumerOpt = Annotated[
    str, typer.Option("--consumer", help=boxes.CONSUMER_HELP, show_default=False)
]


async def _with_box(
    broker: Broker,
    url: str,
    source: str,
    consumer: str,
    work: Callable[[DeadLetterBox], Awaitable[Any]],
) -> Any:
    async with boxes.dead_letter_box(broker, url, source, consumer) as box:
        return await work(box)


def _run(broker: Broker, url: str, work: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    with common.errors_handled():
        try:
            return common.run(work())
        except (OSError, TimeoutError) as exc:
            common.fail(f"cannot reach {broker.value} at {redact.mask_secrets(url)}: {exc}")


@dlq.command("list")
def list_(
    *,
    broker: BrokerOpt,
    url: UrlOpt,
    source: SourceOpt,
    consumer: ConsumerOpt,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """List dead letters, oldest first, without taking them off the broker."""
    letters: list[DeadLetter] = _run(
        broker,
        url,
        lambda: _with_box(broker, url, source, consumer, lambda box: box.list(limit)),
    )
    if as_json:
        common.out.print_json(json.dumps([dataclasses.asdict(x) for x in letters]))
        return
    if not letters:
        common.out.print("No dead letters.")
        return
    table = Table(title=f"{len(letters)} dead letter(s)", title_justify="left")
    for column in ("dlq id", "event id", "type", "kind", "deliveries", "failed at", "reason"):
        table.add_column(column, overflow="fold" if column == "reason" else "ellipsis")
    for x in letters:
        cells = (
            x.id,
            x.event_id or "",
            x.type or "",
            x.kind,
            str(x.deliveries),
            x.failed_at,
            x.reason,
        )
        table.add_row(*(escape(cell) for cell in cells))  # broker data, never Rich markup
    common.out.print(table)


@dlq.command()
def replay(
    *,
    broker: BrokerOpt,
    url: UrlOpt,
    source: SourceOpt,
    consumer: ConsumerOpt,
    ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Dead-letter ids (the 'dlq id' column); none with --all.", show_default=False
        ),
    ] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Put dead letters back on their origin, delivery count reset, and remove them."""
    if bool(ids) == replay_all:
        common.bad_input("name dead-letter ids to replay, or pass --all (not both)")
    if replay_all and not yes:
        if not common.is_interactive():
            common.bad_input(
                "replaying every dead letter: refusing without confirmation: pass --yes"
            )
        typer.confirm("Replay every dead letter of this consumer?", abort=True)
    chosen = None if replay_all else list(ids or [])
    count: int = _run(
        broker,
        url,
        lambda: _with_box(broker, url, source, consumer, lambda box: box.replay(chosen)),
    )
    common.out.print(f"Replayed {count} dead letter(s).")
    if chosen is not None and count < len(chosen):
        common.fail(
            f"{len(chosen) - count} of the named ids were not in the dead-letter "
            "destination (already replayed or never there)"
        )
