"""Pure helpers of the commands: rates between snapshots, ages, time filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer

from tether.commands.backends import Snapshot
from tether.commands.dlq import parse_when
from tether.commands.status import format_age, rates


def snap(at: float, seq: int, pending: int, dead: int = 0) -> Snapshot:
    return Snapshot(pending, 0, 0, dead, 0, None, seq, at)


def test_rates_infer_deliveries_from_the_sequence() -> None:
    # 100 produced in 2 s; the backlog grew by 20 and 10 went dead: 70 were delivered.
    r = rates(snap(0.0, 1000, 50), snap(2.0, 1100, 70, dead=10))
    assert r is not None and (r.produced, r.delivered) == (50.0, 35.0)
    assert rates(snap(1.0, 1, 1), snap(1.0, 1, 1)) is None


def test_format_age() -> None:
    assert format_age(None) == "-"
    assert format_age(timedelta(seconds=3.21)) == "3.2s"
    assert format_age(timedelta(minutes=5)) == "5.0m"
    assert format_age(timedelta(hours=2)) == "2.0h"


def test_parse_when() -> None:
    now = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert parse_when("--before", "2h", now) == now - timedelta(hours=2)
    assert parse_when("--after", "45s", now) == now - timedelta(seconds=45)
    assert parse_when("--after", "2026-01-31T10:00:00Z", now) == now - timedelta(hours=2)
    assert parse_when("--after", "2026-01-31T10:00:00", now) == now - timedelta(hours=2)
    assert parse_when("--after", None, now) is None
    with pytest.raises(typer.Exit):
        parse_when("--before", "soon", now)
