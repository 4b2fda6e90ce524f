"""Table specs and filters: names are checked, values are always parameters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tether.core.errors import ConfigError
from tether.outbox.table import OUTBOX
from tether.queue import (
    ITEMS,
    FilterError,
    InvalidItemError,
    ItemFilter,
    ItemState,
    NewItem,
    TableSpec,
)
from tether.queue.spec import render, where

HOSTILE = "x'); DROP TABLE tether_items; --"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "tether_items; DROP"},
        {"name": "Tether"},
        {"name": "t", "extra_columns": ("type ",)},
        {"name": "t", "extra_columns": ("payload",)},
        {"name": "t", "extra_columns": ("state",)},
    ],
)
def test_table_spec_refuses_unsafe_or_clashing_names(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        TableSpec(**kwargs)  # type: ignore[arg-type]


def test_every_filter_field_becomes_a_parameter() -> None:
    f = ItemFilter(
        ids=[uuid.uuid4()],
        partition_key=HOSTILE,
        state=ItemState.DEAD,
        error=HOSTILE,
        created_before=datetime(2026, 1, 2, tzinfo=UTC),
        created_after=datetime(2026, 1, 1, tzinfo=UTC),
        extra={"type": HOSTILE, "tenant_id": HOSTILE},
    )
    for dialect in ("postgres", "sqlite"):
        clause, params = where(OUTBOX, f, dialect, queue=None, states=None)
        assert HOSTILE not in clause
        assert list(params.values()).count(HOSTILE) == 4
        assert "tenant_id = :f_x0" in clause and "type = :f_x1" in clause


def test_empty_filter_matches_everything_in_the_adapters_queue() -> None:
    clause, params = where(ITEMS, ItemFilter(), "postgres", queue="jobs", states=None)
    assert (clause, params) == ("queue = :f_queue", {"f_queue": "jobs"})
    clause, _ = where(OUTBOX, ItemFilter(), "sqlite", queue=None, states=None)
    assert clause == "TRUE"


def test_operation_states_narrow_and_check_the_filter() -> None:
    clause, _ = where(ITEMS, ItemFilter(), "postgres", queue=None, states=(ItemState.DEAD,))
    assert clause == "state IN ('dead')"
    with pytest.raises(FilterError, match="works on dead items, not pending"):
        where(
            ITEMS,
            ItemFilter(state=ItemState.PENDING),
            "postgres",
            queue=None,
            states=(ItemState.DEAD,),
        )


@pytest.mark.parametrize("column", ["payload", "seq", "type OR 1=1", "", HOSTILE])
def test_extra_columns_outside_the_spec_are_refused(column: str) -> None:
    with pytest.raises(FilterError, match="cannot filter tether_outbox on"):
        where(OUTBOX, ItemFilter(extra={column: "x"}), "postgres", queue=None, states=None)


def test_items_table_has_no_extra_filter_columns() -> None:
    with pytest.raises(FilterError, match="extra filter columns are none"):
        where(ITEMS, ItemFilter(extra={"type": "x"}), "postgres", queue=None, states=None)


def test_render_fills_the_table_and_fragments() -> None:
    q = render("postgres", "list", OUTBOX, where="TRUE")
    assert "FROM tether_outbox WHERE TRUE" in q.sql and "{" not in q.sql
    assert "aggregate_id" in q.sql and "NULL AS queue" in q.sql
    assert q.params == ("limit", "offset")
    claim = render("postgres", "claim", ITEMS, key_order="")
    assert "t.queue = $" in claim.numbered and "MATERIALIZED" in claim.sql


def test_naive_times_and_bad_attempt_limits_are_refused() -> None:
    with pytest.raises(InvalidItemError, match="timezone-aware"):
        NewItem("x", run_at=datetime(2026, 1, 1))
    with pytest.raises(InvalidItemError, match="at least 1"):
        NewItem("x", max_attempts=0)
    with pytest.raises(FilterError, match="created_before must be timezone-aware"):
        ItemFilter(created_before=datetime(2026, 1, 1))
