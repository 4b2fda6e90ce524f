"""``tether consume dlq list|replay`` against each real broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner, Result

from tests.chaos.consumer_process import open_source
from tests.support.consumers import broker_origin
from tests.support.services import AMQP_URL, NATS_URL, REDIS_URL
from tether.cli import app
from tether.commands import common
from tether.consume import Consumer, RedeliveryPolicy
from tether.core.envelope import Event, make_event

pytestmark = pytest.mark.timeout(90)

URLS = {"nats": NATS_URL, "rabbitmq": AMQP_URL, "redis": REDIS_URL}


@pytest.fixture(autouse=True)
def wide_tables() -> Any:
    # The table must not squeeze cells to fit a width guessed from whatever terminal, if any,
    # the test process has (a pytest-xdist worker has none); COLUMNS alone did not reach it there.
    unset = common.out._width  # None: measured per print; restored so later tests measure again
    common.out.width = 250
    yield
    common.out._width = unset


def tether(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"}, catch_exceptions=False)


def where(broker: str, origin: str) -> list[str]:
    consumer = origin if broker == "rabbitmq" else "billing"  # RabbitMQ: the queue
    return ["--broker", broker, "--url", URLS[broker], "--source", origin, "--consumer", consumer]


@pytest.mark.parametrize("broker", ["nats", "rabbitmq", "redis"])
async def test_list_then_replay_a_dead_letter(broker: str, pg_dsn: str) -> None:
    engine = create_async_engine(pg_dsn.replace("postgresql://", "postgresql+asyncpg://"))
    fixed = False
    handled: list[str] = []

    async def handle(event: Event, tx: Any) -> None:
        if not fixed:
            raise RuntimeError("ledger [closed] for the day")
        handled.append(str(event.id))

    async with broker_origin(broker) as (origin, sink):
        event = make_event("OrderPlaced", {"n": 1}, aggregate_type="order", aggregate_id="o-1")
        assert (await sink.publish([event]))[0].ok
        source = await open_source(broker, origin)
        consumer = Consumer(
            source,
            handle,
            transaction=engine.begin,
            wait=0.2,
            policy=RedeliveryPolicy(max_deliveries=1),
        )
        try:
            for _ in range(50):
                if [o.verdict for o in await consumer.run_once()] == ["dead"]:
                    break
            listed = await asyncio.to_thread(
                tether, "consume", "dlq", "list", *where(broker, origin), "--json"
            )
            assert listed.exit_code == 0, listed.output
            [letter] = json.loads(listed.output)
            assert letter["event_id"] == str(event.id)
            assert letter["kind"] == "handler"
            assert letter["reason"] == "RuntimeError: ledger [closed] for the day"
            table = await asyncio.to_thread(
                tether, "consume", "dlq", "list", *where(broker, origin)
            )
            assert "ledger [closed]" in table.output  # data, not Rich markup

            bogus = await asyncio.to_thread(
                tether, "consume", "dlq", "replay", *where(broker, origin), "no-such-id"
            )
            assert bogus.exit_code in (1, 2), bogus.output  # not an id here, or not there
            assert "error:" in bogus.output
            assert "Traceback" not in bogus.output

            fixed = True
            replayed = await asyncio.to_thread(
                tether, "consume", "dlq", "replay", *where(broker, origin), letter["id"]
            )
            assert replayed.exit_code == 0, replayed.output
            assert "Replayed 1 dead letter(s)." in replayed.output
            for _ in range(50):
                await consumer.run_once()
                if handled:
                    break
            assert handled == [str(event.id)]
            empty = await asyncio.to_thread(
                tether, "consume", "dlq", "list", *where(broker, origin)
            )
            assert "No dead letters." in empty.output
        finally:
            with contextlib.suppress(Exception):
                await source.close()
            await engine.dispose()


def test_replay_needs_ids_or_all() -> None:
    result = tether(
        "consume",
        "dlq",
        "replay",
        "--broker",
        "redis",
        "--url",
        REDIS_URL,
        "--source",
        "s",
        "--consumer",
        "g",
    )
    assert result.exit_code == 2
    assert "name dead-letter ids to replay, or pass --all" in result.output


def test_replay_all_asks_for_confirmation_when_not_interactive() -> None:
    result = tether(
        "consume",
        "dlq",
        "replay",
        "--broker",
        "redis",
        "--url",
        REDIS_URL,
        "--source",
        "s",
        "--consumer",
        "g",
        "--all",
    )
    assert result.exit_code == 2
    assert "pass --yes" in result.output


def test_an_unreachable_broker_is_one_line_with_the_password_masked() -> None:
    result = tether(
        "consume",
        "dlq",
        "list",
        "--broker",
        "rabbitmq",
        "--url",
        "amqp://guest:s3cret@127.0.0.1:1/",
        "--source",
        "x",
        "--consumer",
        "q",
    )
    assert result.exit_code == 1
    assert "s3cret" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_unknown_broker_is_bad_input() -> None:
    result = tether(
        "consume",
        "dlq",
        "list",
        "--broker",
        "kafka",
        "--url",
        "x",
        "--source",
        "s",
        "--consumer",
        "c",
    )
    assert result.exit_code == 2
