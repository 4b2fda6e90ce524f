"""Retry schedule: exponential bound, full jitter within it, cap, exhaustion, validation."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.core.backoff import RetryPolicy
from tether.core.errors import ConfigError

POLICY = RetryPolicy(max_attempts=5, base=timedelta(seconds=1), cap=timedelta(seconds=30))


def test_bounds_double_then_cap() -> None:
    assert [POLICY.bound(n).total_seconds() for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@given(attempt=st.integers(min_value=1, max_value=200), seed=st.integers())
def test_jittered_delay_stays_within_bound(attempt: int, seed: int) -> None:
    delay = POLICY.delay(attempt, random.Random(seed))
    assert timedelta(0) <= delay <= POLICY.bound(attempt)


def test_jitter_spreads_retries() -> None:
    rng = random.Random(1)
    draws = {POLICY.delay(4, rng) for _ in range(50)}
    assert len(draws) > 40


def test_without_jitter_delay_is_the_bound() -> None:
    p = RetryPolicy(base=timedelta(seconds=2), cap=timedelta(seconds=60), jitter=False)
    assert p.delay(3) == timedelta(seconds=8)


def test_exhaustion() -> None:
    assert not POLICY.exhausted(4)
    assert POLICY.exhausted(5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"base": timedelta(0)}, "retry base must be positive"),
        (
            {"base": timedelta(seconds=10), "cap": timedelta(seconds=1)},
            "must not be below its base",
        ),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
