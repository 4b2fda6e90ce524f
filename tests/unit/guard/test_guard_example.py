"""The AI-scorer example runs and prints what docs/guard.md says it prints."""

from __future__ import annotations

from tests.support.examples import run_example


def test_ai_scorer_with_rule_based_fallback() -> None:
    assert run_example("examples/guard_ai_scorer.py", stderr_empty=True).splitlines() == [
        "order o-1: score 0.12 from ai, circuit closed",
        "order o-2: score 0.1 from rules, circuit closed",
        "order o-3: score 0.1 from rules, circuit closed",
        "order o-4: score 0.1 from rules, circuit open",
        "order o-5: score 0.9 from rules, circuit open",
        "order o-6: score 0.9 from rules, circuit open",
        "calls to the AI service while open: 0",
    ]
