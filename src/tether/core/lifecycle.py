"""One lifecycle for every durable item: outbox events, work items, deliveries, jobs.

An attempt ends in an :class:`Outcome`; :func:`decide` turns it into a :class:`Transition`:
the next state, the attempts spent, when the item may be tried again, the error text (clipped
here, once) and the error-history entry. Each face writes a transition with its own statement
(the relay inside its batch transaction, the work-item engine under a lease check), but none
of them decides one on its own, so retries and dead-lettering mean the same everywhere.

::

    pending --claim--> (attempt) --ok--------> done (or deleted)
                                 --retry-----> pending after backoff, attempt spent
                                 --defer-----> pending after a given wait, no attempt spent
                                 --permanent-> dead
                                 --no route--> dead
    retry with the last attempt spent -> dead;  dead --replay--> pending, attempts reset
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from tether.core import jsonutil
from tether.core.backoff import RetryPolicy

# Error text is kept for people reading a dead-letter queue, not for full stack dumps; the
# history holds up to max_attempts entries per item, so each one stays short.
MAX_ERROR_CHARS = 2000
# The one transition decided in SQL: a claim finds an item whose worker kept dying.
LEASE_EXPIRED = "lease expired on the last attempt (the worker stopped or hung)"


class ItemState(enum.StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"  # held under a lease (work items only; the relay holds row locks)
    DONE = "done"
    DEAD = "dead"


class Outcome(enum.StrEnum):
    """How one attempt at an item ended."""

    OK = "ok"  # delivered or handled
    RETRY = "retry"  # failed, may succeed later: spends an attempt
    DEFER = "defer"  # not attempted (sink paused, postponed on purpose): spends none
    PERMANENT = "permanent"  # failed and never will succeed: dead at once
    NO_ROUTE = "no_route"  # nowhere to send it: dead at once rather than silently dropped


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One entry of an item's error history, stored as a JSON object in ``errors``."""

    at: datetime
    attempt: int
    error: str

    def to_json(self) -> str:
        record = {"at": self.at.isoformat(), "attempt": self.attempt, "error": self.error}
        return jsonutil.dumps(record).decode()


@dataclass(frozen=True, slots=True)
class Transition:
    """What to write for an item once an attempt ended.

    ``attempts`` is the item's attempt count afterwards (written as is: the writer holds the
    row). ``error`` is None when ``last_error`` stays as it is; ``entry`` is None when no
    history entry is added (success, or a deferral, which is not a failure of the item).
    """

    outcome: Outcome
    state: ItemState
    attempts: int
    charged: bool
    delay: timedelta
    error: str | None
    entry: ErrorRecord | None

    @property
    def dead(self) -> bool:
        return self.state is ItemState.DEAD

    @property
    def finished(self) -> bool:
        return self.state in (ItemState.DONE, ItemState.DEAD)

    def entry_json(self) -> str | None:
        return None if self.entry is None else self.entry.to_json()


def clip_error(error: str) -> str:
    if len(error) <= MAX_ERROR_CHARS:
        return error
    return error[: MAX_ERROR_CHARS - 1] + "…"


_DEAD_AT_ONCE = (Outcome.PERMANENT, Outcome.NO_ROUTE)


def decide(
    outcome: Outcome,
    *,
    attempt: int,
    max_attempts: int | None,
    policy: RetryPolicy,
    now: datetime,
    error: str | None = None,
    delay: timedelta | None = None,
    rng: random.Random | None = None,
) -> Transition:
    """The transition for ``outcome`` of attempt number ``attempt`` (1 for the first try).

    ``max_attempts`` is the item's own limit (None: the policy's). ``delay`` is required for
    :attr:`Outcome.DEFER` and ignored otherwise: a retry waits the policy's backoff.
    """
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    if outcome is Outcome.OK:
        return Transition(outcome, ItemState.DONE, attempt, True, timedelta(0), None, None)
    text = None if error is None else clip_error(error)
    if outcome is Outcome.DEFER:
        if delay is None or delay < timedelta(0):
            raise ValueError(f"a deferral needs a non-negative delay, got {delay}")
        return Transition(outcome, ItemState.PENDING, attempt - 1, False, delay, text, None)
    text = text if text is not None else f"{outcome.value} (no error text given)"
    entry = ErrorRecord(now, attempt, text)
    limit = max_attempts or policy.max_attempts
    if outcome in _DEAD_AT_ONCE or attempt >= limit:
        return Transition(outcome, ItemState.DEAD, attempt, True, timedelta(0), text, entry)
    wait = policy.delay(attempt, rng)
    return Transition(outcome, ItemState.PENDING, attempt, True, wait, text, entry)
