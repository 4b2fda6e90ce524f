"""The SQLite engine against a plain-Python model of the rules, driven by Hypothesis.

Random interleavings of enqueue, claim, heartbeat, complete, fail, dead-letter, replay and
clock moves (including zombies acting on leases they lost) must leave the engine exactly where
the model says: same items, states, attempts and claim results.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule

from tether.core.backoff import RetryPolicy
from tether.core.clock import FrozenClock
from tether.core.errors import LeaseLostError
from tether.queue import Claimed, ItemState, NewItem
from tether.queue.sqlite import SqliteQueue

LEASE = timedelta(seconds=30)
POLICY = RetryPolicy(max_attempts=3, base=timedelta(seconds=10), jitter=False)


@dataclass
class Model:
    seq: int
    key: str | None
    max_attempts: int | None
    available_at: datetime
    state: ItemState = ItemState.PENDING
    attempts: int = 0
    token: uuid.UUID | None = None


class QueueMachine(RuleBasedStateMachine):
    held = Bundle("held")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FrozenClock()
        self.q = self.run(SqliteQueue.connect(":memory:", clock=self.clock, policy=POLICY))
        self.items: dict[uuid.UUID, Model] = {}
        self.next_seq = 1

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.q.close())
        self.loop.close()

    # -- the model's claim rule ---------------------------------------------------------------
    def limit_of(self, m: Model) -> int:
        return m.max_attempts or POLICY.max_attempts

    def live(self, m: Model) -> bool:
        return m.state in (ItemState.PENDING, ItemState.CLAIMED)

    def expected_claim(self, limit: int) -> list[uuid.UUID]:
        now = self.clock.now()
        for m in self.items.values():  # expired leases on the last attempt go dead first
            if (
                m.state is ItemState.CLAIMED
                and m.available_at <= now
                and m.attempts >= self.limit_of(m)
            ):
                m.state, m.token = ItemState.DEAD, None
        ordered = sorted(self.items.items(), key=lambda kv: kv[1].seq)
        picked = []
        for item_id, m in ordered:
            if not self.live(m) or m.available_at > now:
                continue
            if m.key is not None and any(
                o.key == m.key and self.live(o) and o.seq < m.seq for o in self.items.values()
            ):
                continue
            picked.append(item_id)
        return picked[:limit]

    # -- rules -----------------------------------------------------------------------------
    @rule(
        n=st.integers(1, 3),
        key=st.sampled_from([None, "a", "b"]),
        max_attempts=st.sampled_from([None, 1, 2]),
    )
    def enqueue(self, n: int, key: str | None, max_attempts: int | None) -> None:
        new = [NewItem(i, partition_key=key, max_attempts=max_attempts) for i in range(n)]
        for item_id in self.run(self.q.enqueue(new)):
            self.items[item_id] = Model(
                self.next_seq, key, max_attempts, available_at=self.clock.now()
            )
            self.next_seq += 1

    @rule(target=held, limit=st.integers(1, 4))
    def claim(self, limit: int) -> Any:
        expected = self.expected_claim(limit)
        got: list[Claimed] = self.run(self.q.claim(limit, lease=LEASE, worker="w"))
        assert [c.id for c in got] == expected
        for c in got:
            m = self.items[c.id]
            m.state, m.attempts, m.token = ItemState.CLAIMED, m.attempts + 1, c.lease_token
            m.available_at = self.clock.now() + LEASE
            assert c.item.attempts == m.attempts
        return multiple(*got)  # every claim joins the pool, to be used later (or as a zombie)

    def current(self, c: Claimed) -> bool:
        m = self.items.get(c.id)
        return m is not None and m.state is ItemState.CLAIMED and m.token == c.lease_token

    def act(self, c: Claimed, op: Any) -> bool:
        """Run ``op``; a stale lease must be refused, a current one accepted."""
        if self.current(c):
            self.run(op)
            return True
        try:
            self.run(op)
        except LeaseLostError:
            return False
        raise AssertionError("a stale lease was accepted")

    @rule(c=held)
    def complete(self, c: Claimed) -> None:
        if self.act(c, self.q.complete(c)):
            del self.items[c.id]

    @rule(c=held)
    def fail(self, c: Claimed) -> None:
        if self.act(c, self.q.fail(c, "boom")):
            m = self.items[c.id]
            m.token = None
            if m.attempts >= self.limit_of(m):
                m.state = ItemState.DEAD
            else:
                m.state = ItemState.PENDING
                m.available_at = self.clock.now() + POLICY.bound(m.attempts)

    @rule(c=held)
    def dead_letter(self, c: Claimed) -> None:
        if self.act(c, self.q.dead_letter(c, "poison")):
            m = self.items[c.id]
            m.state, m.token = ItemState.DEAD, None

    @rule(c=held)
    def heartbeat(self, c: Claimed) -> None:
        if self.act(c, self.q.heartbeat(c, LEASE)):
            self.items[c.id].available_at = self.clock.now() + LEASE

    @rule(seconds=st.sampled_from([1, 10, 29, 30, 60]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule()
    def replay(self) -> None:
        dead = [m for m in self.items.values() if m.state is ItemState.DEAD]
        assert self.run(self.q.replay()) == len(dead)
        for m in dead:
            m.state, m.attempts, m.available_at = ItemState.PENDING, 0, self.clock.now()

    # -- invariants --------------------------------------------------------------------------
    @invariant()
    def stored_items_match_the_model(self) -> None:
        stored = {i.id: i for i in self.run(self.q.list(limit=10_000))}
        assert stored.keys() == self.items.keys()
        for item_id, m in self.items.items():
            s = stored[item_id]
            assert (s.state, s.attempts, s.lease_token) == (m.state, m.attempts, m.token)
            if m.state is not ItemState.DEAD:
                assert s.available_at == m.available_at

    @invariant()
    def stats_match_the_model(self) -> None:
        stats = self.run(self.q.stats())
        count = {s: sum(1 for m in self.items.values() if m.state is s) for s in ItemState}
        assert (stats.pending, stats.claimed, stats.dead) == (
            count[ItemState.PENDING],
            count[ItemState.CLAIMED],
            count[ItemState.DEAD],
        )


QueueMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
test_queue_matches_its_model = QueueMachine.TestCase
