"""The circuit-view example runs and prints what docs/guard.md says of it."""

from __future__ import annotations

from tests.support.examples import run_example


def test_circuits_read_from_outside_and_reset() -> None:
    assert run_example("examples/guard_circuit_view.py", stderr_empty=True).splitlines() == [
        "ai-scorer at 1010: open until 1030.0",
        "ai-scorer at 1040: half_open",
        "after reset: None",
    ]
