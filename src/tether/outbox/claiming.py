"""How a relay picks a batch, at a cost that does not grow with the backlog's depth on any key.

Only the head of a partition key (its first pending row) may be published, then the rows behind
it, in order. Finding heads with a probe per row ("is there an earlier pending row of this key?")
walks the whole backlog when a few keys hold most of it. Instead:

1. **Windows.** The store reads the first pending rows in ``seq`` order, without locking them.
   A read that starts at the first pending row sees every pending row up to its last one, so the
   first row of a key in it *is* that key's head, and the key's later rows in it are its run:
   no probe at all. The candidates are then locked (``SKIP LOCKED``); a key whose head another
   relay holds is dropped whole. When other relays hold most of a window, the next window is read.
2. **Past the window.** When a window is narrow (a few deep keys fill it, or its heads are not
   due: a failing head blocks only its own key), the store jumps key to key through the
   ``(partition_key, seq)`` index from a rotating cursor (a skip scan: one index descent per key)
   to find other keys' heads, and takes unkeyed rows past the windows. So a hot key never starves
   the rest, and a blocked key never blocks anyone else.
3. **Fair shares.** Every key in the batch gets at least ``min_run`` rows; the batch's room is
   split evenly between its keys and what a short key leaves is given to the deep ones. One key
   alone gets the whole batch, so a single hot key drains at the sink's in-order pace.

The store supplies five primitives (:class:`ClaimSource`); this module owns the decisions, so
PostgreSQL and SQLite pick batches the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol


class Row(Protocol):
    """A claimed row as the driver returns it, read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


# Windows read after the first when other relays hold most of the last one: enough for a few
# relays working side by side, while a claim's cost stays bounded.
MAX_WINDOWS = 4


class Peek(NamedTuple):
    """One pending row seen without a lock: enough to plan, not to publish. A tuple, since a
    claim reads a thousand of them: stores build them with ``Peek._make(row)``.

    ``held``: another transaction holds the row's lock right now (PostgreSQL tells from the
    row's ``xmax`` and the snapshot's running transactions). Only a hint, to skip what another
    relay is publishing without trying to lock it; the lock itself decides."""

    seq: int
    key: str | None
    due: bool
    held: bool = False


class ClaimSource(Protocol):
    """What a store does for a claim, inside the batch's transaction."""

    async def walk(self, after_seq: int, limit: int) -> list[Peek]:
        """Pending rows with ``seq > after_seq`` in ``seq`` order, due or not, unlocked, each
        marked ``held`` when another transaction holds its lock."""
        ...

    async def lock(self, seqs: Sequence[int]) -> list[Row]:
        """Lock these rows if they are still pending and due, skipping any another relay
        holds; the rows (with ``seq`` and ``partition_key``) it got."""
        ...

    async def key_heads(self, cursor: str, limit: int, exclude: Sequence[str]) -> list[Peek]:
        """Due heads of up to ``limit`` keys not in ``exclude``, in key order from just after
        ``cursor``, wrapping around once."""
        ...

    async def lock_runs(self, heads: Sequence[Peek], per_key: int) -> list[Row]:
        """Lock up to ``per_key`` pending rows of each head's key from the head on, in ``seq``
        order, skipping rows another relay holds; each row carries ``due``."""
        ...

    async def unkeyed(self, after_seq: int, limit: int) -> list[Row]:
        """Lock up to ``limit`` due rows without a partition key and with ``seq > after_seq``."""
        ...


@dataclass(slots=True)
class _Group:
    """A key's head and the due rows behind it that a window showed (or one unkeyed row)."""

    peeks: list[Peek]
    open: bool = True  # False once a row that is not due ended the run


@dataclass(slots=True)
class Planner:
    """Turns windows of peeked rows into candidate groups; pure, so tests drive it directly."""

    limit: int
    min_run: int
    seen: set[str] = field(default_factory=set)
    last_seq: int = 0
    groups: list[_Group] = field(default_factory=list)
    taken: int = 0  # keys (and unkeyed rows) whose head another relay holds
    held: int = 0  # rows of the last window another relay holds
    _by_key: dict[str, _Group] = field(default_factory=dict)

    def add_window(self, peeks: Sequence[Peek]) -> list[_Group]:
        """Record a window read after :attr:`last_seq` (in seq order); returns the groups it
        started. Hot: a claim runs it over every row it reads."""
        new: list[_Group] = []
        seen, by_key = self.seen, self._by_key
        taken = held = 0
        for p in peeks:
            key = p[1]
            if p[3]:
                held += 1
            if key is None:
                if p[3]:
                    taken += 1
                elif p[2]:
                    new.append(_Group([p]))
            elif key not in seen:
                seen.add(key)
                # A head that is not due blocks its key, one another relay holds is taken:
                # nothing of the key this batch.
                if p[3]:
                    taken += 1
                elif p[2]:
                    group = by_key[key] = _Group([p])
                    new.append(group)
            else:
                run = by_key.get(key)
                if run is not None and run.open:
                    if p[2]:
                        run.peeks.append(p)
                    else:
                        run.open = False
        if peeks:
            self.last_seq = max(self.last_seq, peeks[-1][0])
        self.taken += taken
        self.held = held
        self.groups.extend(new)
        return new


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


def keep_runs(rows: Sequence[Row], heads: Mapping[str, int]) -> list[Row]:
    """Of rows locked for keyed runs, keep per key the due prefix that starts at its head.

    A key whose head is missing (another relay holds it, or it was settled meanwhile) is dropped
    whole: publishing the row behind a head someone else holds would break the key's order."""
    by_key: dict[str, list[Row]] = {}
    for row in rows:
        by_key.setdefault(row["partition_key"], []).append(row)
    kept: list[Row] = []
    for key, run in by_key.items():
        run.sort(key=lambda r: r["seq"])
        if run[0]["seq"] != heads.get(key):
            continue
        for row in run:
            if not row["due"]:
                break
            kept.append(row)
    return kept


@dataclass(slots=True)
class ClaimResult:
    rows: list[Row]
    cursor: str
    held: int  # rows another relay held at the front: read that many more next time


async def claim_rows(
    source: ClaimSource, limit: int, min_run: int, cursor: str = "", held: int = 0
) -> ClaimResult:
    """Pick and lock up to ``limit`` rows: heads and their runs, in ``seq`` order. ``held``
    is what the last claim found other relays holding at the front: the first window reads
    past that many rows too, so relays side by side do not read each other's batch twice."""
    min_run = max(1, min(min_run, limit))
    plan = Planner(limit, min_run)
    size = limit + max(0, min(held, (MAX_WINDOWS - 1) * limit))
    window = await source.walk(0, size)
    full = len(window) == size
    plan.add_window(window)
    front_held = plan.held

    extra: list[Peek] = []
    rows: list[Row] = []
    wanted_keys = max(1, limit // min_run)
    # Keys other relays hold count as width: the shape is wide, the next window will do.
    narrow = full and len(plan.groups) + plan.taken < wanted_keys
    if narrow:
        # A few deep or blocked keys fill the window: find other keys' heads past it, and
        # unkeyed rows past it, so that they share this batch instead of waiting behind.
        extra = await source.key_heads(cursor, wanted_keys - len(plan.groups), sorted(plan.seen))
        if extra:
            cursor = extra[-1].key or cursor
        rows += await source.unkeyed(
            plan.last_seq, max(0, wanted_keys - len(plan.groups) - len(extra))
        )
    rows += await _lock_groups(source, plan.groups, extra, limit - len(rows), min_run)

    windows = 1
    new_groups = plan.groups
    while (
        full
        and (new_groups or plan.held)
        and len(rows) < max(1, limit // 2)
        and windows < MAX_WINDOWS
    ):
        # Other relays hold most of this window: read on for keys nobody holds yet.
        window = await source.walk(plan.last_seq, limit)
        full = len(window) == limit
        new_groups = plan.add_window(window)
        rows += await _lock_groups(source, new_groups, [], limit - len(rows), min_run)
        windows += 1

    if full and not narrow and len(rows) < limit:
        # Rows past every window read so far may be unkeyed; they must not wait behind keys.
        rows += await source.unkeyed(plan.last_seq, limit - len(rows))
    # A row can be reached twice (an unkeyed row locked past the first window, then seen in a
    # later one); this transaction holds it once.
    unique = {r["seq"]: r for r in rows}
    return ClaimResult([unique[seq] for seq in sorted(unique)][:limit], cursor, front_held)


async def _lock_groups(
    source: ClaimSource, groups: Sequence[_Group], extra: Sequence[Peek], room: int, min_run: int
) -> list[Row]:
    if room <= 0 or not (groups or extra):
        return []
    # Keys found past the window may run deep: plan them as long as the room allows.
    takes = share(room, [len(g.peeks) for g in groups] + [room] * len(extra), min_run)
    window_takes, extra_takes = takes[: len(groups)], takes[len(groups) :]
    rows = await _lock_prefixes(source, groups, [0] * len(groups), window_takes)
    if extra and any(extra_takes):
        heads = {p.key: p.seq for p in extra if p.key is not None}
        runs = keep_runs(await source.lock_runs(extra, max(extra_takes)), heads)
        rows += runs[: max(0, room - len(rows))]
    left = room - len(rows)
    if left > 0:
        # Short keys left room: give it to the deep keys the even share cut, in order.
        held = {r["seq"] for r in rows}
        more: list[int] = []
        for g, take in zip(groups, window_takes, strict=True):
            n = min(len(g.peeks) - take, left) if take and g.peeks[take - 1].seq in held else 0
            more.append(max(0, n))
            left -= max(0, n)
        if any(more):
            rows += await _lock_prefixes(source, groups, window_takes, more)
    return rows


async def _lock_prefixes(
    source: ClaimSource,
    groups: Sequence[_Group],
    starts: Sequence[int],
    counts: Sequence[int],
) -> list[Row]:
    """Lock ``counts[i]`` window rows of group i from ``starts[i]``; keep each group's rows up
    to the first one not locked. A group whose head is not locked keeps nothing."""
    wanted = [g.peeks[s : s + n] for g, s, n in zip(groups, starts, counts, strict=True)]
    # Heads first: rows behind a head another relay holds are never locked in vain.
    heads = [part[0].seq for part, s in zip(wanted, starts, strict=True) if part and s == 0]
    got = {r["seq"]: r for r in await source.lock(heads)} if heads else {}
    rest = [
        p.seq
        for part, s in zip(wanted, starts, strict=True)
        if part and (s > 0 or part[0].seq in got)
        for p in (part if s > 0 else part[1:])
    ]
    if rest:
        got.update((r["seq"], r) for r in await source.lock(rest))
    kept: list[Row] = []
    for part in wanted:
        for p in part:
            row = got.get(p.seq)
            if row is None:  # held elsewhere or settled meanwhile: the key's run ends here
                break
            kept.append(row)
    return kept
