"""``tether consume dlq``: list and replay what consumers dead-lettered on a broker.

The broker adapters live in :mod:`tether.consume`; each one offers
``dead_letter_box(url, source, consumer)``, imported here only when its broker is named, so the
command works with just the extras of the brokers in use.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Awaitable, Callable, Coroutine
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tether.commands import common
from tether.consume.port import DeadLetter, DeadLetterBox
from tether.core.errors import ConfigError

app = typer.Typer(help="Consumers' dead letters on the broker.", no_args_is_help=True)
dlq = typer.Typer(help="List and replay a consumer's dead letters.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")


class Broker(StrEnum):
    nats = "nats"
    rabbitmq = "rabbitmq"
    redis = "redis"


_MODULES = {
    Broker.nats: ("tether.consume.jetstream", "nats"),
    Broker.rabbitmq: ("tether.consume.rabbitmq", "rabbitmq"),
    Broker.redis: ("tether.consume.redis_streams", "redis"),
}
_SOURCE_HELP = "JetStream stream, RabbitMQ exchange or Redis stream key the consumer reads."
_CONSUMER_HELP = "Durable consumer (JetStream), queue (RabbitMQ) or group (Redis)."

BrokerOpt = Annotated[Broker, typer.Option("--broker", help="Which broker.", show_default=False)]
UrlOpt = Annotated[
    str,
    typer.Option("--url", envvar="TETHER_CONSUME_URL", help="Broker URL.", show_default=False),
]
SourceOpt = Annotated[str, typer.Option("--source", help=_SOURCE_HELP, show_default=False)]
ConsumerOpt = Annotated[str, typer.Option("--consumer", help=_CONSUMER_HELP, show_default=False)]


async def _with_box(
    broker: Broker,
    url: str,
    source: str,
    consumer: str,
    work: Callable[[DeadLetterBox], Awaitable[Any]],
) -> Any:
    module_name, extra = _MODULES[broker]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"--broker {broker.value} needs the {extra} extra: "
            f"pip install 'tether[{extra}]' ({exc})"
        ) from None
    box: DeadLetterBox = await module.dead_letter_box(url, source, consumer)
    try:
        return await work(box)
    finally:
        await box.close()


def _run(broker: Broker, url: str, work: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    with common.errors_handled():
        try:
            return common.run(work())
        except (OSError, TimeoutError) as exc:
            common.fail(f"cannot reach {broker.value} at {common.mask_secrets(url)}: {exc}")


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
