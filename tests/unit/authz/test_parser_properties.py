"""Property tests: every parser of outside input in tether.authz gives a value or its error.

Capability names come from code, the command line and the database; policy tables and
``--expires`` from users. For any text, each parser either returns a value that agrees with
the text or raises the documented error type, never anything else.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import example, given
from hypothesis import strategies as st

from tether.authz.cli import parse_expiry
from tether.authz.errors import InvalidCapabilityName, InvalidGrantError, UnknownCapabilityError
from tether.authz.names import Registry, implied_by, parse
from tether.authz.policy import PolicyTableError, parse_table
from tether.authz.sql import SqlAuthzStore
from tether.core.errors import ConfigError

PART = st.from_regex(r"[a-z][a-z0-9_-]{0,39}", fullmatch=True)
NAME_CHARS = string.ascii_letters + string.digits + ":_-* \n\t\x00é"
NEAR_NAMES = st.text(alphabet=NAME_CHARS, max_size=60)
VALID_NAMES = st.builds(
    lambda r, a, m: f"{r}:{a}" + (f":{m}" if m else ""), PART, PART, st.none() | PART
)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@given(st.text() | NEAR_NAMES)
@example("trade:view\n")
@example("trade:*:own")
def test_parse_gives_the_parts_of_the_name_or_refuses(name: str) -> None:
    try:
        parsed = parse(name)
    except InvalidCapabilityName:
        return
    rebuilt = f"{parsed.resource}:{parsed.action}"
    if parsed.modifier is not None:
        rebuilt += f":{parsed.modifier}"
    assert rebuilt == name
    assert not (parsed.is_wildcard and parsed.modifier is not None)


@given(VALID_NAMES)
def test_every_well_formed_name_parses_and_implies_itself(name: str) -> None:
    parse(name)
    assert implied_by(name)[0] == name


@given(st.lists(st.text() | NEAR_NAMES | VALID_NAMES, max_size=5), st.text() | NEAR_NAMES)
def test_registry_accepts_names_or_refuses_them(declared: list[str], checked: str) -> None:
    try:
        registry = Registry(declared)
    except InvalidCapabilityName:
        return
    try:
        assert registry.check(checked) == checked
    except (InvalidCapabilityName, UnknownCapabilityError):
        return
    assert checked in registry.known


TOKENS = st.sampled_from(
    ["alice", "-", "acme", "trade:view", "allow", "deny", "yes", "no", "maybe", "#", "x y"]
)
TIMES = st.datetimes(timezones=st.none() | st.just(UTC)).map(datetime.isoformat)
LINES = st.lists(TOKENS | TIMES | st.text(max_size=12), max_size=8).map(" ".join)


@given(st.lists(LINES, max_size=6).map("\n".join) | st.text())
@example("alice trade:view acme 2026-01-01T00:00:00Z allow yes")
@example("alice trade:view - 2026-01-01T00:00:00 allow")
def test_policy_table_gives_cases_or_a_table_error(text: str) -> None:
    try:
        cases = parse_table(text)
    except PolicyTableError as exc:
        cases, error = [], str(exc)
    else:
        error = "line "
    assert error.startswith("line ")  # the error names the line at fault
    for case in cases:
        assert case.at.tzinfo is not None
        assert case.org != "-"
        assert case.line >= 1


OFFSETS = st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23))
ZONES = st.none() | st.just(UTC) | OFFSETS.map(timezone)


@given(
    st.text()
    | st.from_regex(r"[0-9]{1,12}[mhdMs]?", fullmatch=True)
    | st.datetimes(timezones=ZONES).map(datetime.isoformat)
)
@example("99999999d")
@example("9999-12-31T23:59:59-14:00")
@example("²d")
@example("0m")
def test_expiry_is_a_time_or_a_grant_error(text: str) -> None:
    try:
        when = parse_expiry(text, NOW)
    except InvalidGrantError as exc:
        message = str(exc)
        assert repr(text) in message, message  # the error names the text at fault
        return
    assert when is not None
    assert when.utcoffset() == timedelta(0)


SCHEMES = st.sampled_from(
    [
        *("postgresql", "postgres", "POSTGRESQL", "postgresql+asyncpg", "postgresql+nope"),
        *("sqlite", "sqlite+aiosqlite", "sqlite+pysqlite", "SQLite", "mysql", "http", ""),
    ]
)
STORE_URLS = st.builds(lambda s, rest: f"{s}://{rest}", SCHEMES, st.text(max_size=30)) | st.text()


@given(STORE_URLS)
@example("mysql://app:pw-secret@db/app")
@example("postgresql://app:pw-secret@db:port/app")
@example("sqlite://x")
@example("garbage")
@example("app:pw-secret@db://x")
def test_store_urls_give_a_store_or_a_config_error(url: str) -> None:
    try:
        store = SqlAuthzStore.from_url(url)
    except ConfigError as exc:
        message = str(exc)
        assert "pw-secret" not in message
        assert "postgresql://user@host:5432/db or sqlite:///path/to/file.db" in message
        return
    assert store.engine.dialect.name in ("postgresql", "sqlite")
