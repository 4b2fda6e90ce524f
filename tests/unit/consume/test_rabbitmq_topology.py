"""The RabbitMQ consumer's names, delay rounding, delivery counting and header copying."""

from __future__ import annotations

import pytest

from tether.consume import _rabbitmq_topology as topo
from tether.consume import deadletter
from tether.core.errors import ConfigError


@pytest.mark.parametrize(
    ("seconds", "ms"),
    [(0, 0), (0.0004, 0), (0.007, 7), (0.05, 50), (0.031, 32), (0.3, 315), (0.8, 800),
     (0.5, 500), (9.4, 9000), (9.6, 10000), (10.7, 11200), (123.4, 125000),
     (86_400, 86_400_000), (10**9, 86_400_000)],
)  # fmt: skip
def test_delays_round_to_preferred_numbers(seconds: float, ms: int) -> None:
    assert topo.delay_ms(seconds) == ms


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_delay_must_be_finite_and_not_negative(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        topo.delay_ms(bad)


def test_jittered_default_delays_share_a_few_queues() -> None:
    backoff = (10, 30, 60, 120, 300, 600)
    names = {topo.delay_ms(b * (1 + j / 100)) for b in backoff for j in range(-10, 11)}
    assert len(names) <= 3 * len(backoff)
    for b in backoff:  # never more than about 6 % off
        for j in range(-10, 11):
            wanted = b * 1000 * (1 + j / 100)
            assert abs(topo.delay_ms(wanted / 1000) / wanted - 1) < 0.065


def test_the_nearest_delay_is_nearest_by_ratio() -> None:
    assert topo.nearest(40, [500, 11_000]) == 500
    assert topo.nearest(3000, [1000, 10_000]) == 1000
    assert topo.nearest(4000, [1000, 10_000]) == 10_000


def test_the_count_is_the_copys_number_plus_the_brokers_redeliveries() -> None:
    assert topo.handed_out({}, redelivered=False) == 1
    assert topo.handed_out(None, redelivered=True) == 2  # classic: a redelivery counts as one
    assert topo.handed_out({topo.DELIVERIES: 3}, redelivered=False) == 3
    assert topo.handed_out({topo.DELIVERIES: "3", "x-delivery-count": 2}, redelivered=True) == 5
    assert topo.handed_out({"x-delivery-count": 0}, redelivered=False) == 1
    # Whatever a foreign publisher wrote, a count comes out.
    assert topo.handed_out({topo.DELIVERIES: b"oops", "x-delivery-count": -4}, False) == 1


def test_copies_drop_broker_bookkeeping_and_replays_drop_the_failure_record() -> None:
    original = {"cloudEvents_id": "1", "x-app": 7, "x-delivery-count": 2, "x-death": []}
    assert topo.copied(original) == {"cloudEvents_id": "1", "x-app": 7}
    dead = {**original, topo.DELIVERIES: 3, topo.DLQ_ID: "d1", deadletter.KIND: "handler"}
    assert topo.replayed(dead) == {"cloudEvents_id": "1", "x-app": 7}


def test_a_dead_letter_id_falls_back_to_the_message_id_then_the_body() -> None:
    assert topo.dlq_id({topo.DLQ_ID: b"abc"}, "m", b"") == "abc"
    assert topo.dlq_id({}, "m", b"") == "m"
    assert topo.dlq_id(None, None, b"x") == topo.dlq_id({}, "", b"x")
    assert len(topo.dlq_id(None, None, b"x")) == 32


def test_a_letter_the_broker_dead_lettered_says_so() -> None:
    record = topo.dead_letter_headers(
        {"x-first-death-reason": b"delivery_limit", "x-first-death-queue": "billing"}
    )
    letter = deadletter.read_dead_letter("1", record, {})
    assert (letter.kind, letter.origin) == ("broker:delivery_limit", "billing")


def test_header_values_become_text_without_raising() -> None:
    assert topo.text(b"\xffok") == "\ufffdok"
    assert topo.text(7) == "7"
    assert topo.text("s") == "s"


@pytest.mark.parametrize(
    ("bindings", "message"),
    [("order.#", "list of binding keys"), ([], "at least one"), ([""], "1 to 255 bytes"),
     (["order#"], "whole words"), (["a b"], "blank"), (["x" * 256], "1 to 255 bytes")],
)  # fmt: skip
def test_binding_keys_are_checked(bindings: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        topo.check_bindings(bindings)  # type: ignore[arg-type]


def test_names_are_checked() -> None:
    assert topo.check_bindings(["order.*", "#", "order.placed.eu"]) == (
        "order.*",
        "#",
        "order.placed.eu",
    )
    assert topo.check_queue("billing-v2:eu") == "billing-v2:eu"
    for bad in ("", ".x", "a/b", "amq.billing", "x" * 201):
        with pytest.raises(ConfigError, match="queue name"):
            topo.check_queue(bad)
    for bad in ("", "amq.topic", "a b"):
        with pytest.raises(ConfigError, match="exchange name"):
            topo.check_exchange(bad)


def test_retry_queues_dead_letter_back_onto_the_queue() -> None:
    args = topo.retry_arguments("billing", "quorum", 800)
    assert args["x-message-ttl"] == 800
    assert (args["x-dead-letter-exchange"], args["x-dead-letter-routing-key"]) == ("", "billing")
    assert args["x-dead-letter-strategy"] == "at-least-once"
    assert "x-dead-letter-strategy" not in topo.retry_arguments("billing", "classic", 800)
    assert topo.retry_queue("billing", 800) == "billing.retry.800"
    assert topo.main_arguments("billing", "quorum")["x-dead-letter-routing-key"] == "billing.dlq"
