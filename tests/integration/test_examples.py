"""Every runnable example under examples/ runs and prints what the docs say it prints.

The docs' code blocks are copied from these files (tests/unit/test_docs_code_blocks.py), so
running the files is what keeps the tutorial true. To add an example, add it to EXAMPLES with
the lines its output must contain.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.examples import run_example

ROOT = Path(__file__).resolve().parents[2]

EXAMPLES: dict[str, list[str]] = {
    "examples/quickstart_queue.py": [
        "dead letters: [{'order': 8}]",
        "its error: RuntimeError: mail server said no",
        "replayed: 1",
        "outbox dead letters: 0",
    ],
    "examples/consume_jetstream.py": [
        "dead letters: [('OrderPlaced', 'handler', 2)]",
        "replayed: 1",
        "shipped: ['broken', 'kettle', 'mug']",
    ],
    "examples/outbox_relay.py": ["processed once each: ['o-0', 'o-1', 'o-2', 'o-3', 'o-4']"],
    "examples/tracing.py": [
        "POST /orders\n  tether.add_event OrderPlaced\n    tether.outbox.wait\n"
        "    tether.publish orders\n      tether.consume OrderPlaced",
    ],
    "examples/quickstart_sinks.py": [
        "jetstream outcomes: [True, True]",
        "memory sink: one delivered, one refused",
    ],
    "examples/sink_plugin.py": ["file sink wrote: [('order.placed', {'order': 'o-1'})]"],
    "examples/broker_sinks.py": [
        "rabbitmq outcomes: [True, True, False] - unroutable: exchange 'shop' routes routing "
        "key 'audit' to no queue",
        "rabbitmq consumer handled: ['OrderPlaced']",
        "redis outcomes: [True, True]",
        "redis stream holds: ['OrderPlaced']",
    ],
    "examples/consume_rabbitmq.py": [
        "dead letters: [('OrderPlaced', 'handler', 2)]",
        "replayed: 1",
        "shipped: ['broken', 'kettle', 'mug']",
    ],
    "examples/consume_redis.py": [
        "dead letters: [('OrderPlaced', 'handler', 2)]",
        "replayed: 1",
        "shipped: ['broken', 'kettle', 'mug']",
    ],
    "examples/catalog_events.py": [
        "written: OrderPlaced v2 order {'order_id': 'o-1', 'total_cents': 1200, 'currency': 'EUR'}",
        "refused: event OrderPlaced v2 payload is invalid: total_cents: Input should be a valid integer",
        "refused: event type 'OrderPlacd' is not in the event catalog (unknown types are refused); did you mean OrderPlaced?",
        "handled: [(2, {'order_id': 'o-old', 'total_cents': 300, 'currency': 'EUR'})]",
    ],
    "examples/jobs_quickstart.py": [
        "refused: unknown job 'send_reciept'; known jobs: charge, send_receipt",
        "refused: job send_receipt: invalid arguments",
        "receipt: sent receipt for order 7 to a@example.com",
        "charged once: 1",
        "recovered: ['Recovered from stale state (no worker heartbeat)'] done",
    ],
    "examples/jobs_handoff.py": [
        "published: render_invoice {'invoice_id': 1} id is the job's: True",
        "broker down: pending attempts 0",
    ],
    "examples/webhooks_quickstart.py": [
        "receiver: ['verified']",
        "delivery: done attempt: ok 204",
        "after replay: ['verified', 'repeat dropped']",
    ],
    "examples/deadletter_alerts.py": [
        "http outcomes: [True, True]",
        """workflow got: ['OrderPlaced order/o-1 {"order":1}', 'OrderPlaced order/o-2 {"order":2}']""",
        "slack got: OrderPlaced · order/o-1",
        "dead=3: ['Dead letters growing: 3 dead in payments (was 0)']",
        "dead=3: no alert",
        "dead=120: ['Dead letters over threshold: 120 dead in payments (threshold 100)']",
        "dead=0: ['Dead letters cleared: none left in payments (was 120)']",
        "webhook alerts: ['increase', 'threshold', 'cleared']",
    ],
    "examples/realtime_quickstart.py": [
        "subscribed to org:acme: recovering=True recovered=True",
        "seen in order: ['A-1', 'B-2', 'C-3']",
    ],
    "examples/http_edge_quickstart.py": [
        "first: 201 {'payment': 1, 'amount': 42}",
        "retry: 201 {'payment': 1, 'amount': 42} replayed: true",
        'RateLimit-Policy: "strict";q=10;w=60, "standard";q=100;w=60',
        "same key, other body: 422 Idempotency-Key reused",
        "no key: 400 application/problem+json",
        "12 payments under the strict preset: 10 made, 2 refused",
        "429 body: ['error', 'message', 'retryAfter'] Retry-After:",
    ],
    "examples/runners.py": [
        "billing-sync (consumer): alive",
        "silent for 0.2 s: alive",
        "silent for 0.5 s: late",
        "silent for 1.0 s: lost",
        "after the block: stopped",
        "synced per the history: 50",
    ],
    "examples/quickstart_outbox.py": [
        "placed o0",
        "relayed 3",
        "handled 3 redelivery handled again: False",
    ],
}


def test_every_quickstart_is_listed() -> None:
    found = {str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("quickstart_*.py")}
    assert found <= set(EXAMPLES), f"add these to EXAMPLES: {sorted(found - set(EXAMPLES))}"


@pytest.mark.parametrize(("path", "expected"), sorted(EXAMPLES.items()), ids=sorted(EXAMPLES))
def test_example_runs(path: str, expected: list[str]) -> None:
    stdout = run_example(path)
    for line in expected:
        assert line in stdout, stdout
