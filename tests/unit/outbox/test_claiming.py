"""The claim's decisions against an in-memory source: any backlog shape makes progress, and what
is claimed of a key is always a due prefix that starts at its head."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.outbox.claiming import Head, Row, Window, claim_rows, share


@dataclass
class Pending:
    seq: int
    key: str | None
    due: bool


@dataclass
class MemorySource:
    """Pending rows; ``held`` are locked by another relay."""

    rows: list[Pending]
    held: set[int] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def _row(self, p: Pending) -> dict[str, Any]:
        return {"seq": p.seq, "partition_key": p.key, "due": p.due}

    async def heads(self, limit: int, window: int) -> Window:
        self.calls.append("heads")
        inside = self.rows[:window]
        seen: set[str] = set()
        out = []
        for p in inside:
            first = p.key is None or p.key not in seen
            if p.key is not None:
                seen.add(p.key)
            if first and p.due and p.seq not in self.held:
                out.append(self._row(p))
        end = self.rows[window].seq if len(self.rows) > window else None
        return Window(out[:limit], end)

    async def key_heads(self, cursor: str, limit: int, exclude: Sequence[str]) -> list[Head]:
        self.calls.append("key_heads")
        heads: dict[str, Pending] = {}
        for p in self.rows:
            if p.key is not None and p.key not in heads:
                heads[p.key] = p
        order = sorted(heads)
        order = [k for k in order if k > cursor] + [k for k in order if k <= cursor]
        found = [heads[k] for k in order if heads[k].due and k not in exclude][:limit]
        return [Head(p.seq, p.key) for p in found if p.key is not None]

    async def lock_heads(self, seqs: Sequence[int]) -> list[Row]:
        want = set(seqs)
        return [
            self._row(p) for p in self.rows if p.seq in want and p.seq not in self.held and p.due
        ]

    async def lock_runs(self, heads: Sequence[Head], per_key: int) -> list[Row]:
        self.calls.append("lock_runs")
        out: list[Row] = []
        for h in heads:
            # Only heads this batch holds: the rows behind another relay's head are never locked.
            assert h.seq not in self.held, "lock_runs for a head another relay holds"
            run = [p for p in self.rows if p.key == h.key and p.seq >= h.seq]
            out += [self._row(p) for p in run if p.seq not in self.held][:per_key]
        return out

    async def unkeyed(self, after_seq: int, limit: int) -> list[Row]:
        self.calls.append("unkeyed")
        out = [p for p in self.rows if p.key is None and p.seq > after_seq and p.due]
        return [self._row(p) for p in out if p.seq not in self.held][:limit]


def _backlog(draw: st.DrawFn) -> list[Pending]:
    keys = draw(st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=1, max_size=60))
    return [
        Pending(i + 1, k, draw(st.booleans()) or draw(st.booleans())) for i, k in enumerate(keys)
    ]


backlogs = st.composite(_backlog)()


@settings(max_examples=300, deadline=None)
@given(rows=backlogs, limit=st.integers(1, 20), run=st.integers(1, 8), data=st.data())
async def test_claims_are_due_prefixes_from_each_head(
    rows: list[Pending], limit: int, run: int, data: st.DataObject
) -> None:
    heads: dict[str, Pending] = {}
    for p in rows:
        if p.key is not None:
            heads.setdefault(p.key, p)
    held_keys = data.draw(st.sets(st.sampled_from(sorted(heads) or ["a"])))
    # Another relay holds a key's head and a prefix of its run: never anything after a gap.
    held = {heads[k].seq for k in held_keys if k in heads}
    source = MemorySource(rows, held)
    result = await claim_rows(source, limit, run, narrow=data.draw(st.booleans()))
    got = [r["seq"] for r in result.rows]
    assert len(got) == len(set(got)) <= limit
    by_seq = {p.seq: p for p in rows}
    for key in {by_seq[s].key for s in got} - {None}:
        mine = [s for s in got if by_seq[s].key == key]
        of_key = [p.seq for p in rows if p.key == key]
        assert key not in held_keys
        assert mine == of_key[: len(mine)]  # a prefix from the head, in order
        assert all(by_seq[s].due for s in mine)
    assert all(by_seq[s].due for s in got)
    claimable = [
        p for p in rows
        if (p.key is None and p.due) or (p.key in heads and heads[p.key] is p and p.due)
    ]  # fmt: skip
    if claimable and not held:
        assert got, f"no progress: {rows} limit={limit} run={run} held={held_keys}"


async def test_an_unkeyed_row_just_past_a_blocked_window_is_claimed() -> None:
    # The window (2 rows) holds a key whose head waits for a retry; the unkeyed row right after
    # it (the window's end) is claimable and must not be skipped (found by hypothesis).
    rows = [Pending(1, "a", False), Pending(2, "a", True), Pending(3, None, True)]
    result = await claim_rows(MemorySource(rows), 1, 1)
    assert [r["seq"] for r in result.rows] == [3]


async def test_a_deep_key_costs_one_window_not_its_depth() -> None:
    rows = [Pending(i + 1, "hot", True) for i in range(100_000)]
    source = MemorySource(rows)
    result = await claim_rows(source, 500, 16)
    assert [r["seq"] for r in result.rows] == list(range(1, 501))
    assert source.calls == ["heads", "key_heads", "unkeyed", "lock_runs"]


async def test_many_keys_cost_one_statement() -> None:
    source = MemorySource([Pending(i + 1, f"k{i}", True) for i in range(3000)])
    result = await claim_rows(source, 1000, 16)
    assert len(result.rows) == 1000
    assert source.calls == ["heads"]


def test_share_gives_short_keys_room_to_deep_ones() -> None:
    assert share(10, [1, 100, 1], 2) == [1, 8, 1]
    assert share(10, [100, 100], 2) == [5, 5]
    assert share(3, [5, 5, 5, 5], 2) == [2, 1, 0, 0]
    assert share(0, [3], 1) == [0]
    assert share(5, [], 1) == []
