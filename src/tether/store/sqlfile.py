"""Named SQL blocks in ``.sql`` files, written once with ``:name`` parameters.

A file holds blocks that start with ``-- name: <query_name>``. Each :class:`Query` renders
itself for the driver at hand: asyncpg's ``$1``, psycopg's ``%(name)s``, or SQLAlchemy's and
sqlite3's native ``:name``. ``::type`` casts are left alone.

Each component keeps its SQL in ``<component>/sql/<dialect>.sql`` (``postgres``, ``sqlite``)
or ``<component>/sql/queries.sql`` when it is the same on both; :func:`queries` reads them.
(``tether.authz`` uses ``queries/`` instead: a ``sql/`` folder would shadow its ``sql`` module.)
Schemas are elsewhere: ``tether/store/<dialect>/schema/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from tether.store.dialect import Dialect

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")
_HEADER = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: str
    params: tuple[str, ...] = field(init=False)
    numbered: str = field(init=False)
    pyformat: str = field(init=False)

    def __post_init__(self) -> None:
        order: list[str] = []
        for match in _PARAM.finditer(self.sql):
            if match.group(1) not in order:
                order.append(match.group(1))
        object.__setattr__(self, "params", tuple(order))
        object.__setattr__(
            self, "numbered", _PARAM.sub(lambda m: f"${order.index(m.group(1)) + 1}", self.sql)
        )
        object.__setattr__(
            self, "pyformat", _PARAM.sub(lambda m: f"%({m.group(1)})s", self.sql.replace("%", "%%"))
        )

    def args(self, values: dict[str, object]) -> list[object]:
        """Positional arguments for the numbered form, in order."""
        return [values[name] for name in self.params]

    def bound(self, values: dict[str, object]) -> tuple[object, ...]:
        """The numbered statement followed by its arguments, to splat into an asyncpg call:
        ``await conn.fetch(*query.bound(values))``."""
        return (self.numbered, *self.args(values))


def parse(text: str) -> dict[str, Query]:
    headers = list(_HEADER.finditer(text))
    queries: dict[str, Query] = {}
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        body = text[header.end() : end].strip()
        queries[header.group(1)] = Query(header.group(1), body)
    return queries


@cache
def load(package: str, filename: str) -> dict[str, Query]:
    return parse(resources.files(package).joinpath(filename).read_text())


def queries(package: str, dialect: Dialect | None = None) -> dict[str, Query]:
    """A component's queries, laid out as ``<package>/sql/<dialect>.sql``, or
    ``<package>/sql/queries.sql`` for SQL that runs on every dialect (``dialect=None``)."""
    return load(package, f"sql/{dialect or 'queries'}.sql")
