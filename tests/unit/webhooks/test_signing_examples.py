"""The receiver example runs and prints what docs/webhook-signing.md says it prints."""

from __future__ import annotations

from tests.support.examples import run_example


def test_webhook_receiver_example() -> None:
    lines = run_example("examples/webhook_receiver.py", stderr_empty=True).splitlines()
    assert lines[0] == "delivered: 200 {'status': 'handled order.paid'}"
    assert lines[1] == "retried: 200 {'status': 'duplicate, ignored'}"
    assert lines[2].startswith("forged: 401 {'error': 'no webhook signature matches")
    assert lines[3].startswith("stale: 401 {'error': 'webhook timestamp is 60")
    assert lines[4] == "during rotation: 200 {'status': 'handled order.paid'}"
