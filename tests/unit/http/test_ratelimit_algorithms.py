"""The pure algorithms behind both stores."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.core.errors import ConfigError
from tether.http.ratelimit import algorithms
from tether.http.ratelimit.algorithms import Limit, WindowState

TEN_A_MINUTE = Limit("t", 10, 60)


def run_sliding(times: list[float], limit: Limit) -> list[bool]:
    state: WindowState | None = None
    out = []
    for now in times:
        decision, state = algorithms.sliding_window(state, now, limit, 1)
        out.append(decision.allowed)
    return out


def run_gcra(times: list[float], limit: Limit) -> list[bool]:
    tat: float | None = None
    out = []
    for now in times:
        decision, tat = algorithms.gcra(tat, now, limit, 1)
        out.append(decision.allowed)
    return out


def test_sliding_window_admits_the_limit_then_refuses_with_a_usable_retry_after() -> None:
    state = None
    for i in range(10):
        decision, state = algorithms.sliding_window(state, 600.0, TEN_A_MINUTE, 1)
        assert decision.allowed and decision.remaining == 9 - i
    refused, state = algorithms.sliding_window(state, 600.0, TEN_A_MINUTE, 1)
    assert not refused.allowed and refused.remaining == 0
    # All 10 at the window start: the next window opens at 660 but they weigh until ~666.
    assert refused.retry_after == pytest.approx(66.0)
    later, _ = algorithms.sliding_window(state, 600.0 + refused.retry_after + 1e-6, TEN_A_MINUTE, 1)
    assert later.allowed


def test_sliding_window_weighs_the_previous_window() -> None:
    state = None
    for _ in range(10):
        _, state = algorithms.sliding_window(state, 630.0, TEN_A_MINUTE, 1)
    # 15 s into the next window, 75% of the previous 10 still count: 2 more fit.
    allowed = []
    for _ in range(4):
        decision, state = algorithms.sliding_window(state, 675.0, TEN_A_MINUTE, 1)
        allowed.append(decision.allowed)
    assert allowed == [True, True, False, False]


def test_gcra_allows_a_burst_of_limit_then_one_per_interval() -> None:
    assert run_gcra([0.0] * 11, TEN_A_MINUTE) == [True] * 10 + [False]
    tat = None
    for _ in range(10):
        _, tat = algorithms.gcra(tat, 0.0, TEN_A_MINUTE, 1)
    refused, _ = algorithms.gcra(tat, 0.0, TEN_A_MINUTE, 1)
    assert refused.retry_after == pytest.approx(6.0)
    assert algorithms.gcra(tat, 6.0, TEN_A_MINUTE, 1)[0].allowed


def test_costlier_than_the_quota_is_never_admitted() -> None:
    decision, _ = algorithms.sliding_window(None, 0.0, TEN_A_MINUTE, 11)
    assert not decision.allowed and decision.retry_after > 0


@pytest.mark.parametrize(("limit", "period"), [(0, 60), (10, 0)])
def test_limits_are_validated(limit: int, period: float) -> None:
    with pytest.raises(ConfigError):
        Limit("x", limit, period)


arrivals = st.lists(st.floats(min_value=0, max_value=300), min_size=1, max_size=200).map(sorted)


@settings(max_examples=200, deadline=None)
@given(arrivals)
def test_sliding_window_never_exceeds_the_limit_in_any_fixed_window(times: list[float]) -> None:
    limit = Limit("p", 5, 10)
    per_window: dict[int, int] = {}
    for now, ok in zip(times, run_sliding(times, limit), strict=True):
        if ok:
            per_window[math.floor(now / 10)] = per_window.get(math.floor(now / 10), 0) + 1
    assert all(count <= 5 for count in per_window.values())


@settings(max_examples=200, deadline=None)
@given(arrivals)
def test_gcra_never_exceeds_burst_plus_rate(times: list[float]) -> None:
    limit = Limit("p", 5, 10)
    admitted = [t for t, ok in zip(times, run_gcra(times, limit), strict=True) if ok]
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            span = admitted[j] - start
            assert j - i + 1 <= 5 + math.floor(span / 2 + 1e-9)
