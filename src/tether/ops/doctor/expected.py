"""What the schema should hold, read from Tether's own schema files (never a hard-coded list).

The schema files are what the migrations produce (``tests/integration/test_migrations.py``
holds the two equal), so a table, index or storage setting found here and missing in the
database means a migration did not run or someone dropped it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from tether.store.postgres import ddl
from tether.store.sqlite import ddl as sqlite_ddl

_INDEX = re.compile(
    r"(CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(\w+)"
    r"\s+ON\s+(?:ONLY\s+)?(\w+)[^;]*;)",
    re.I,
)
_STATEMENT = re.compile(
    r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<create_table>\w+)"
    r"|DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<drop_table>\w+)"
    r"|ALTER\s+TABLE\s+(?P<rename>\w+)\s+RENAME\s+TO\s+(?P<new>\w+)"
    r"|CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?P<create_index>\w+)"
    r"|DROP\s+INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?(?P<drop_index>\w+)",
    re.I,
)
_KINDS = ("create_table", "drop_table", "rename", "create_index", "drop_index")
_STORAGE = re.compile(r"ALTER\s+TABLE\s+(\w+)\s+SET\s*\(([^)]*)\)", re.I)
_COMMENT = re.compile(r"--[^\n]*")


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    table: str
    statement: str  # the CREATE INDEX that makes it, for the fix


@dataclass(frozen=True, slots=True)
class Schema:
    tables: tuple[str, ...]
    indexes: tuple[Index, ...]
    # table -> {option: value}, e.g. the hot tables' autovacuum settings
    storage: dict[str, dict[str, str]] = field(default_factory=dict)


def parse(sql: str) -> Schema:
    """Tables, indexes and storage settings as the script leaves them, statement by statement
    (SQLite's scripts rebuild tables: create a copy, drop the old one, rename the copy)."""
    text = _COMMENT.sub("", sql)
    tables: dict[str, None] = {}
    indexes: dict[str, Index] = {}
    for m in _STATEMENT.finditer(text):
        kind = next(k for k in _KINDS if m.group(k) is not None)
        name = m.group(kind).lower()
        if kind == "create_table":
            tables[name] = None
        elif kind == "drop_table":
            tables.pop(name, None)
            indexes = {k: i for k, i in indexes.items() if i.table != name}
        elif kind == "rename":
            old, new = name, m.group("new").lower()
            tables = {new if t == old else t: None for t in tables}
            indexes = {
                k: Index(i.name, new, i.statement) if i.table == old else i
                for k, i in indexes.items()
            }
        elif kind == "create_index":
            index = _INDEX.match(text, m.start())
            assert index is not None
            statement = " ".join(index.group(1).split())
            indexes[name] = Index(name, index.group(3).lower(), statement)
        elif kind == "drop_index":
            indexes.pop(name, None)
    storage: dict[str, dict[str, str]] = {}
    for m in _STORAGE.finditer(text):
        options = storage.setdefault(m.group(1).lower(), {})
        for part in m.group(2).split(","):
            option, _, value = part.partition("=")
            options[option.strip().lower()] = value.strip()
    return Schema(tuple(tables), tuple(indexes.values()), storage)


@cache
def postgres() -> Schema:
    return parse(ddl.full_schema_sql())


@cache
def sqlite() -> Schema:
    return parse(sqlite_ddl.full_schema_sql())


def sqlite_version() -> int:
    """The ``PRAGMA user_version`` a fully migrated SQLite database has."""
    return max((n for n, _ in sqlite_ddl.schema_files()), default=0)
