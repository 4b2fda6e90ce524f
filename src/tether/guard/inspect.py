"""Looking at circuits from outside the guards that use them: what an operator's view needs.

A guard only asks its store to decide (``admit``, ``success``, ``failure``). An admin page
wants more, without changing anything: each circuit's stored record, a page of them at once,
and, when an operator decides so, a reset. Both stores offer this
(:class:`BreakerInspector`); :func:`view_of` turns a record into what to show, with the
changes time alone makes (an open circuit past its open period is half-open) applied as the
rules of :mod:`tether.guard.policy` apply them, and nothing written back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tether.guard.policy import BreakerPolicy, Record, State, current


@runtime_checkable
class BreakerInspector(Protocol):
    """Read circuits without deciding anything, and reset one."""

    async def records(self, names: Sequence[str]) -> Mapping[str, Record | None]:
        """The stored record of each name (None: none stored, the circuit is closed), read
        in one step; nothing is changed. Raises when the store cannot be read (a view must
        not show a guess as the shared state)."""
        ...

    async def reset(self, name: str) -> bool:
        """Forget the circuit's record: it is closed with no failures counted. True when
        there was one."""
        ...


@dataclass(frozen=True, slots=True)
class CircuitView:
    state: State
    failures: int
    """Failures counted in the current window (a closed circuit; 0 otherwise)."""
    open_until: float | None
    """Unix seconds the open period ends (an open circuit only)."""
    stored: bool
    """False when the store holds no record: never failed, or forgotten after a quiet spell."""


def view_of(record: Record | None, policy: BreakerPolicy, now: float) -> CircuitView:
    if record is None:
        return CircuitView("closed", 0, None, stored=False)
    record = current(record, policy, now)
    in_window = record.state == "closed" and now - record.window_start < policy.window_s
    return CircuitView(
        state=record.state,
        failures=record.failures if in_window else 0,
        open_until=record.open_until if record.state == "open" else None,
        stored=True,
    )
