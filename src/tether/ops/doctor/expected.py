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

_TABLE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)
_INDEX = re.compile(
    r"(CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(\w+)"
    r"\s+ON\s+(?:ONLY\s+)?(\w+)[^;]*;)",
    re.I,
)
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
    text = _COMMENT.sub("", sql)
    tables = tuple(dict.fromkeys(m.group(1).lower() for m in _TABLE.finditer(text)))
    indexes = tuple(
        Index(m.group(2).lower(), m.group(3).lower(), " ".join(m.group(1).split()))
        for m in _INDEX.finditer(text)
    )
    storage: dict[str, dict[str, str]] = {}
    for m in _STORAGE.finditer(text):
        options = storage.setdefault(m.group(1).lower(), {})
        for part in m.group(2).split(","):
            name, _, value = part.partition("=")
            options[name.strip().lower()] = value.strip()
    return Schema(tables, indexes, storage)


@cache
def postgres() -> Schema:
    return parse(ddl.full_schema_sql())
