"""How a relay picks a batch, at a cost that does not grow with the backlog's depth on any key.

Only the head of a partition key (its first pending row) may be published, then the rows behind
it, in order. A claim that tests rows in ``seq`` order for headship ("is there an earlier
pending row of this key?") is exact and cheap when keys are many, but walks the whole backlog
when a few keys hold most of it. So the claim works in three bounded steps:

1. **Heads within a window.** Lock the heads (and unkeyed rows) among the first ``2 * limit``
   pending rows only, testing each for headship with one probe of the ``(partition_key, seq)``
   index and skipping rows other relays hold (``FOR UPDATE SKIP LOCKED``). The window bounds the
   walk; the probe keeps it exact, whatever other relays hold.
2. **Past a narrow window.** When the window holds fewer heads than the batch has room for keys
   (a few deep keys fill it, or its heads wait for a retry: a failing head blocks only its own
   key), jump key to key through the ``(partition_key, seq)`` index from a rotating cursor (a
   skip scan: one index descent per key) for other keys' heads, and take unkeyed rows past the
   window. A hot key never starves the rest; a blocked key holds back no one else.
3. **Runs, in fair shares.** Holding a head, lock the due rows behind it (a relay never locks
   rows behind a head it does not hold, so a run is never cut by another relay's lock), at
   least ``min_run`` per key;
   the batch's room is split evenly between its keys and what a short key leaves goes to the
   deep ones, so one key alone gets the whole batch and drains at its sink's in-order pace.

The store supplies the primitives (:class:`ClaimSource`); this module owns the decisions, so
PostgreSQL and SQLite pick batches the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol


class Row(Protocol):
    """A claimed row as the driver returns it, read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


class Head(NamedTuple):
    """A key's first pending row, found without a lock."""

    seq: int
    key: str


class Window(NamedTuple):
    """What :meth:`ClaimSource.heads` found: locked heads and unkeyed rows, and where the window
    ended (``None``: it held every pending row)."""

    rows: list[Row]
    end: int | None


class ClaimSource(Protocol):
    """What a store does for a claim, inside the batch's transaction."""

    async def heads(self, limit: int, window: int) -> Window:
        """Lock up to ``limit`` due heads and unkeyed rows among the first ``window`` pending
        rows, skipping rows another relay holds."""
        ...

    async def key_heads(self, cursor: str, limit: int, exclude: Sequence[str]) -> list[Head]:
        """Due heads of up to ``limit`` keys not in ``exclude``, in key order from just after
        ``cursor``, wrapping around once; unlocked."""
        ...

    async def lock_heads(self, seqs: Sequence[int]) -> list[Row]:
        """Lock these rows if they are still pending and due, skipping any another relay
        holds."""
        ...

    async def lock_runs(self, heads: Sequence[Head], per_key: int) -> list[Row]:
        """Lock up to ``per_key`` pending rows of each head's key from the head on, in ``seq``
        order; each row carries ``due``. Called only for heads this batch holds: no other
        relay locks the rows behind a head it does not hold, so none is skipped."""
        ...

    async def unkeyed(self, after_seq: int, limit: int) -> list[Row]:
        """Lock up to ``limit`` due rows without a partition key and with ``seq > after_seq``."""
        ...


def share(total_room: int, lengths: Sequence[int], min_run: int) -> list[int]:
    """How many rows each group gets: an even share (at least ``min_run``) in order, then the
    room left over goes to the groups the share cut short, in order."""
    if not lengths:
        return []
    even = max(min_run, total_room // len(lengths))
    takes: list[int] = []
    room = total_room
    for n in lengths:
        take = min(n, even, room)
        takes.append(take)
        room -= take
    for i, n in enumerate(lengths):
        if room <= 0:
            break
        more = min(n - takes[i], room)
        takes[i] += more
        room -= more
    return takes


def keep_runs(rows: Sequence[Row], heads: Mapping[str, int]) -> dict[str, list[Row]]:
    """Of rows locked for keyed runs, keep per key the due prefix that starts at its head.

    A key whose head is missing (another relay holds it, or it was settled meanwhile) is dropped
    whole: publishing the row behind a head someone else holds would break the key's order."""
    by_key: dict[str, list[Row]] = {}
    for row in rows:
        by_key.setdefault(row["partition_key"], []).append(row)
    kept: dict[str, list[Row]] = {}
    for key, run in by_key.items():
        run.sort(key=lambda r: r["seq"])
        if run[0]["seq"] != heads.get(key):
            continue
        prefix: list[Row] = []
        for row in run:
            if not row["due"]:
                break
            prefix.append(row)
        kept[key] = prefix
    return kept


@dataclass(slots=True)
class ClaimResult:
    rows: list[Row]
    cursor: str
    narrow: bool  # few keys hold the backlog: the next claim starts with the skip scan


async def claim_rows(
    source: ClaimSource, limit: int, min_run: int, cursor: str = "", narrow: bool = False
) -> ClaimResult:
    """Pick and lock up to ``limit`` rows: heads and their runs, in ``seq`` order.

    ``narrow`` (what the last claim found) skips the window: its probes would each land on a
    row behind a head, since a few keys hold the backlog."""
    min_run = max(1, min(min_run, limit))
    wanted_keys = max(1, limit // min_run)
    singles: list[Row] = []
    heads: list[Head] = []
    after = 0
    if not narrow:
        found = await source.heads(limit, 2 * limit)
        if len(found.rows) >= limit:  # many keys: heads alone fill the batch
            return ClaimResult(found.rows[:limit], cursor, False)
        singles = [r for r in found.rows if r["partition_key"] is None]
        heads = [Head(r["seq"], r["partition_key"]) for r in found.rows if r["partition_key"]]
        narrow = found.end is not None and len(found.rows) < wanted_keys
        # found.end is the first row past the window: unkeyed rows from it on are not yet seen.
        after = found.end - 1 if found.end is not None else 0
    if narrow:
        # A few deep or blocked keys fill the window: other keys' heads and unkeyed rows past
        # it share this batch instead of waiting behind them.
        more = await source.key_heads(cursor, wanted_keys - len(heads), [h.key for h in heads])
        if more:
            cursor = more[-1].key
            # Hold a head before touching the rows behind it (see lock_runs).
            held = {r["seq"] for r in await source.lock_heads([h.seq for h in more])}
            heads += [h for h in more if h.seq in held]
        want_singles = max(0, wanted_keys - len(heads) - len(singles))
        got_singles = await source.unkeyed(after, want_singles) if want_singles else []
        singles += got_singles
        # Still narrow while the skip scan and unkeyed rows leave the batch short of keys.
        narrow = len(heads) + len(singles) < wanted_keys
    groups = await _runs(source, heads, len(singles), limit, min_run)
    lists: list[list[Row]] = [[r] for r in singles] + groups
    takes = share(limit, [len(g) for g in lists], min_run)
    rows = [r for g, n in zip(lists, takes, strict=True) for r in g[:n]]
    rows.sort(key=lambda r: r["seq"])
    return ClaimResult(rows, cursor, narrow)


async def _runs(
    source: ClaimSource, heads: Sequence[Head], singles: int, limit: int, min_run: int
) -> list[list[Row]]:
    """Each head's run: an even share first; then, while room is left, more of the runs the
    share cut short."""
    if not heads:
        return []
    start = {h.key: h.seq for h in heads}
    per_key = max(min_run, limit // (len(heads) + singles))
    runs = keep_runs(await source.lock_runs(heads, per_key), start)
    room = limit - singles - sum(len(r) for r in runs.values())
    cut = [h for h in heads if len(runs.get(h.key, ())) == per_key]
    if room > 0 and cut:
        # Short keys left room: the deep ones may use it (in order, within the batch).
        runs.update(keep_runs(await source.lock_runs(cut, per_key + room), start))
    return [runs[h.key] for h in heads if runs.get(h.key)]
