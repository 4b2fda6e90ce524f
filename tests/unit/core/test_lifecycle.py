"""The one item lifecycle: every outcome's transition, for the relay and the work-item engine."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.core import lifecycle
from tether.core.backoff import RetryPolicy
from tether.core.lifecycle import ErrorRecord, ItemState, Outcome, decide

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=5, base=timedelta(seconds=1), cap=timedelta(seconds=30))
EXACT = RetryPolicy(max_attempts=5, base=timedelta(seconds=1), jitter=False)


def run(
    outcome: Outcome,
    attempt: int = 1,
    *,
    error: str | None = None,
    delay: timedelta | None = None,
    max_attempts: int | None = None,
) -> lifecycle.Transition:
    return decide(
        outcome,
        attempt=attempt,
        max_attempts=max_attempts,
        policy=EXACT,
        now=NOW,
        error=error,
        delay=delay,
    )


def test_ok_is_done_with_the_attempt_spent_and_nothing_recorded() -> None:
    move = run(Outcome.OK, 3)
    assert (move.state, move.attempts, move.charged) == (ItemState.DONE, 3, True)
    assert move.delay == timedelta(0)
    assert (move.error, move.entry, move.finished, move.dead) == (None, None, True, False)


def test_retry_spends_the_attempt_waits_the_backoff_and_records_it() -> None:
    move = run(Outcome.RETRY, 2, error="HTTP 503")
    assert (move.state, move.attempts, move.charged) == (ItemState.PENDING, 2, True)
    assert move.delay == EXACT.bound(2) == timedelta(seconds=2)
    assert move.error == "HTTP 503"
    assert move.entry == ErrorRecord(NOW, 2, "HTTP 503")
    assert not move.finished


def test_retry_on_the_last_attempt_is_dead() -> None:
    move = run(Outcome.RETRY, 5, error="still failing")
    assert (move.state, move.attempts, move.delay) == (ItemState.DEAD, 5, timedelta(0))
    assert move.dead and move.finished and move.entry == ErrorRecord(NOW, 5, "still failing")


def test_the_items_own_limit_wins_over_the_policy() -> None:
    assert run(Outcome.RETRY, 1, error="x", max_attempts=1).dead
    assert not run(Outcome.RETRY, 5, error="x", max_attempts=9).dead


@pytest.mark.parametrize("outcome", [Outcome.PERMANENT, Outcome.NO_ROUTE])
def test_permanent_failures_are_dead_at_once_with_the_attempt_charged(outcome: Outcome) -> None:
    move = run(outcome, 1, error="schema rejected")
    assert (move.state, move.attempts, move.charged) == (ItemState.DEAD, 1, True)
    assert move.entry == ErrorRecord(NOW, 1, "schema rejected")


def test_defer_gives_the_attempt_back_and_records_no_history() -> None:
    move = run(Outcome.DEFER, 5, error="sink paused", delay=timedelta(seconds=7))
    assert (move.state, move.attempts, move.charged) == (ItemState.PENDING, 4, False)
    assert (move.delay, move.error, move.entry) == (timedelta(seconds=7), "sink paused", None)
    assert not move.dead  # deferring on the last attempt never dead-letters


def test_defer_without_a_reason_leaves_the_last_error_alone() -> None:
    assert run(Outcome.DEFER, 1, delay=timedelta(0)).error is None


@pytest.mark.parametrize("delay", [None, timedelta(seconds=-1)])
def test_defer_needs_a_non_negative_delay(delay: timedelta | None) -> None:
    with pytest.raises(ValueError, match="non-negative delay"):
        run(Outcome.DEFER, 1, delay=delay)


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        run(Outcome.RETRY, 0, error="x")


def test_a_failure_without_text_still_says_what_happened() -> None:
    move = run(Outcome.RETRY, 1)
    assert move.entry is not None
    assert move.error == move.entry.error == "retry (no error text given)"


def test_errors_are_clipped_once_to_one_limit() -> None:
    move = run(Outcome.RETRY, 1, error="x" * 10_000)
    assert move.error is not None and len(move.error) == lifecycle.MAX_ERROR_CHARS
    assert move.error.endswith("…") and move.entry is not None and move.entry.error == move.error
    exact = "y" * lifecycle.MAX_ERROR_CHARS
    assert lifecycle.clip_error(exact) == exact


def test_the_history_entry_is_one_json_shape() -> None:
    entry = ErrorRecord(NOW, 3, "boom")
    assert orjson.loads(entry.to_json()) == {
        "at": "2026-01-01T00:00:00+00:00",
        "attempt": 3,
        "error": "boom",
    }
    assert run(Outcome.RETRY, 3, error="boom").entry_json() == entry.to_json()
    assert run(Outcome.OK).entry_json() is None


@given(
    outcome=st.sampled_from(Outcome),
    attempt=st.integers(min_value=1, max_value=50),
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=50)),
    seed=st.integers(),
    wait=st.integers(min_value=0, max_value=10**6),
)
def test_every_transition_keeps_the_invariants(
    outcome: Outcome, attempt: int, limit: int | None, seed: int, wait: int
) -> None:
    move = decide(
        outcome,
        attempt=attempt,
        max_attempts=limit,
        policy=POLICY,
        now=NOW,
        error="e",
        delay=timedelta(milliseconds=wait),
        rng=random.Random(seed),
    )
    # An attempt is charged exactly when the item was tried; only a charged failure is recorded.
    assert move.charged == (outcome is not Outcome.DEFER)
    assert move.attempts == (attempt if move.charged else attempt - 1)
    assert (move.entry is not None) == (move.charged and outcome is not Outcome.OK)
    assert move.state is not ItemState.CLAIMED
    # Only a pending item waits, and a retry waits within the policy's bound.
    assert move.delay == timedelta(0) or move.state is ItemState.PENDING
    if outcome is Outcome.RETRY and not move.dead:
        assert timedelta(0) <= move.delay <= POLICY.bound(attempt)
    # Dead means: given up on purpose, or out of attempts.
    out_of_attempts = attempt >= (limit or POLICY.max_attempts)
    expect_dead = outcome in (Outcome.PERMANENT, Outcome.NO_ROUTE) or (
        outcome is Outcome.RETRY and out_of_attempts
    )
    assert move.dead == expect_dead
