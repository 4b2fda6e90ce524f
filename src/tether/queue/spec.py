"""Which table an engine instance works on, and the WHERE clause of an item filter.

SQL text only ever receives names from a :class:`TableSpec`, which are checked against a
strict identifier pattern when the spec is built; every user value is a bound parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from tether.core.errors import ConfigError
from tether.queue.ports import FilterError, ItemFilter, ItemState
from tether.store.dialect import Dialect
from tether.store.sqlfile import Query, queries

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
CORE_COLUMNS = (
    "seq", "id", "partition_key", "state", "attempts", "max_attempts", "available_at",
    "lease_token", "worker", "last_error", "errors", "created_at", "finished_at",
)  # fmt: skip
LEASE_COLUMNS = ("lease_token", "worker")


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A table with the engine's core columns. ``extra_columns`` may be filtered on by equality
    and come back in :attr:`Item.extra`.

    ``leased=False`` describes a table whose rows are never leased (the outbox: its relay holds
    row locks instead): it has no ``lease_token`` or ``worker`` column and no ``claimed`` state,
    so it serves the admin operations only and refuses ``claim``.
    """

    name: str
    has_queue_column: bool = False
    extra_columns: tuple[str, ...] = ()
    leased: bool = True

    def __post_init__(self) -> None:
        for ident in (self.name, *self.extra_columns):
            if not _IDENT.match(ident):
                raise ConfigError(f"{ident!r} is not a plain lower-case SQL identifier")
        clash = set(self.extra_columns) & {*CORE_COLUMNS, "queue", "payload"}
        if clash:
            raise ConfigError(f"extra columns {sorted(clash)} are core columns already")

    @property
    def columns(self) -> str:
        return self.columns_of("")

    def columns_of(self, alias: str) -> str:
        """The select list, every column qualified with ``alias`` (``""``: unqualified)."""
        p = f"{alias}." if alias else ""
        queue = f"{p}queue" if self.has_queue_column else "NULL AS queue"
        names = (*CORE_COLUMNS, "payload", *self.extra_columns)
        return ", ".join((*(self._column(p, n) for n in names), queue))

    def _column(self, prefix: str, name: str) -> str:
        if not self.leased and name in LEASE_COLUMNS:
            return f"NULL AS {name}"
        return prefix + name


ITEMS = TableSpec("tether_items", has_queue_column=True)


def _state_list(states: tuple[ItemState, ...]) -> str:
    # Enum values are constants of this module, never user text.
    return ", ".join(f"'{s.value}'" for s in states)


def where(
    spec: TableSpec,
    f: ItemFilter,
    dialect: Dialect,
    *,
    queue: str | None,
    states: tuple[ItemState, ...] | None,
) -> tuple[str, dict[str, object]]:
    """The WHERE body for ``f`` and its parameters. ``queue`` is the adapter's own queue, used
    when the filter names none; ``states`` is what the operation allows (None: any)."""
    conds: list[str] = []
    params: dict[str, object] = {}
    pg = dialect == "postgres"

    def add(cond: str, name: str, value: object) -> None:
        conds.append(cond)
        params[name] = value

    q = f.queue if f.queue is not None else queue
    if q is not None:
        if not spec.has_queue_column:
            raise FilterError(f"table {spec.name} has no queue column: leave filter.queue unset")
        add("queue = :f_queue", "f_queue", q)
    if f.state is not None:
        state = _state(f.state)
        if state is ItemState.CLAIMED and not spec.leased:
            raise FilterError(f"rows of {spec.name} are never claimed under a lease")
        if states is not None and state not in states:
            allowed = ", ".join(s.value for s in states)
            raise FilterError(f"this operation works on {allowed} items, not {state.value}")
        add("state = :f_state", "f_state", state.value)
    elif states is not None:
        conds.append(f"state IN ({_state_list(states)})")
    if f.ids is not None:
        if pg:
            add("id = ANY(CAST(:f_ids AS uuid[]))", "f_ids", list(f.ids))
        else:
            ids = [str(i) for i in f.ids]
            add("id IN (SELECT value FROM json_each(:f_ids))", "f_ids", _json_list(ids))
    if f.partition_key is not None:
        add("partition_key = :f_key", "f_key", f.partition_key)
    if f.error is not None:
        # strpos/instr, not LIKE: a % or _ in the searched text means itself.
        func = "strpos(last_error, :f_error)" if pg else "instr(last_error, :f_error)"
        add(f"{func} > 0", "f_error", f.error)
    if f.created_before is not None:
        add("created_at < :f_before", "f_before", f.created_before)
    if f.created_after is not None:
        add("created_at >= :f_after", "f_after", f.created_after)
    for i, (column, value) in enumerate(sorted(f.extra.items())):
        if column not in spec.extra_columns:
            allowed = ", ".join(spec.extra_columns) or "none"
            raise FilterError(
                f"cannot filter {spec.name} on {column!r}: extra filter columns are {allowed}"
            )
        if not isinstance(value, str):
            raise FilterError(f"filter value for {column} must be a string, got {value!r}")
        add(f"{column} = :f_x{i}", f"f_x{i}", value)
    return (" AND ".join(conds) or "TRUE"), params


def _state(value: object) -> ItemState:
    try:
        return ItemState(str(value))
    except ValueError:
        names = ", ".join(s.value for s in ItemState)
        raise FilterError(f"unknown item state {value!r}: use one of {names}") from None


def _json_list(values: list[str]) -> str:
    import orjson

    return orjson.dumps(values).decode()


@cache
def render(dialect: Dialect, name: str, spec: TableSpec, **parts: str) -> Query:
    """The named block for ``dialect`` with the table name and fragments put in place.

    Fragments are built by this package from spec names and constants only. Cached: the set of
    (query, table, filter shape) combinations is small.
    """
    block = queries("tether.queue", dialect)[name].sql
    block = block.replace("{table}", spec.name).replace("{columns}", spec.columns)
    block = block.replace("{t_columns}", spec.columns_of("t"))
    block = block.replace("{t_queue}", "t.queue = :queue AND" if spec.has_queue_column else "")
    block = block.replace("{p_queue}", "p.queue = t.queue AND" if spec.has_queue_column else "")
    block = block.replace("{release_lease}", ", lease_token = NULL" if spec.leased else "")
    for key, value in parts.items():
        block = block.replace("{" + key + "}", value)
    return Query(name, block)
