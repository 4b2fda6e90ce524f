"""One SQL layout: queries in ``<component>/sql/<dialect>.sql`` (or ``sql/queries.sql``), schemas
in ``store/<dialect>/schema/``, Alembic's scripts in ``store/migrations/sql/``; all shipped."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tether.store import sqlfile
from tether.store.dialect import DIALECTS

SRC = Path(__file__).resolve().parents[3] / "src" / "tether"
QUERY_FILES = {f"{d}.sql" for d in DIALECTS} | {"queries.sql"}
# A folder named sql/ beside authz/sql.py would shadow that module for mypy.
EXCEPTIONS = {"authz/queries/postgres.sql"}
SQL_FILES = sorted(p.relative_to(SRC).as_posix() for p in SRC.rglob("*.sql"))


def _placed(path: str) -> bool:
    parts = path.split("/")
    if path in EXCEPTIONS:
        return True
    if parts[:1] == ["store"] and len(parts) == 4 and parts[2] == "schema":
        return (
            parts[1] in DIALECTS and re.fullmatch(r"[0-9]{3}_[a-z0-9_]+\.sql", parts[3]) is not None
        )
    if parts[:3] == ["store", "migrations", "sql"]:
        return re.fullmatch(r"[0-9]{4}_[a-z0-9_]+\.sql", parts[3]) is not None
    return len(parts) >= 3 and parts[-2] == "sql" and parts[-1] in QUERY_FILES


@pytest.mark.parametrize("path", SQL_FILES)
def test_every_sql_file_is_where_the_layout_says(path: str) -> None:
    assert _placed(path), f"{path}: queries go to <component>/sql/<dialect>.sql"


@pytest.mark.parametrize(
    "path",
    [p for p in SQL_FILES if p.split("/")[-2] in ("sql", "queries") and not p.startswith("store/")],
)
def test_query_files_name_each_block_once(path: str) -> None:
    text = (SRC / path).read_text()
    names = re.findall(r"^--\s*name:\s*(\w+)\s*$", text, re.MULTILINE)
    assert names, f"{path} has no named block"
    assert len(names) == len(set(names)), f"{path}: a block name is used twice"
    package = "tether." + ".".join(path.split("/")[:-2])
    assert set(sqlfile.load(package, "/".join(path.split("/")[-2:]))) == set(names)


def test_package_data_ships_every_sql_file() -> None:
    pyproject = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())
    assert "**/*.sql" in pyproject["tool"]["setuptools"]["package-data"]["tether"]
