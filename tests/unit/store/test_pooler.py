"""The pooler mode's decisions: what asyncpg is given, what is set per transaction, where to
LISTEN, what SQLAlchemy and psycopg are given, and how a pooler's symptoms are explained."""

from __future__ import annotations

import pytest

from tether.config import load_settings
from tether.core.errors import ConfigError
from tether.store.postgres import pooler
from tether.store.postgres.pooler import PoolerMode

RELAY = {
    "plan_cache_mode": "force_custom_plan",
    "enable_bitmapscan": "off",
    "application_name": "tether-relay",
}


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (None, PoolerMode.NONE),
        (False, PoolerMode.NONE),
        (True, PoolerMode.TRANSACTION),
        ("Transaction ", PoolerMode.TRANSACTION),
        ("session", PoolerMode.SESSION),
        (PoolerMode.NONE, PoolerMode.NONE),
    ],
)
def test_mode_of(value: object, mode: PoolerMode) -> None:
    assert pooler.mode_of(value) is mode  # type: ignore[arg-type]


def test_unknown_mode_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="'statement' is not one of none, session, transaction"):
        pooler.mode_of("statement")


@pytest.mark.parametrize("mode", ["none", "session"])
def test_a_session_of_its_own_gets_every_setting_at_startup(mode: str) -> None:
    assert pooler.connect_kwargs(mode, RELAY) == {"server_settings": RELAY}
    assert pooler.connect_kwargs(mode) == {}
    assert pooler.local_settings(mode, RELAY) == {}


def test_transaction_mode_sends_tracked_parameters_only_and_sets_the_rest_per_transaction() -> None:
    assert pooler.connect_kwargs("transaction", RELAY) == {
        "statement_cache_size": 0,
        "server_settings": {"application_name": "tether-relay"},
    }
    assert pooler.connect_kwargs("transaction") == {"statement_cache_size": 0}
    # plan_cache_mode steers named statements only, which transaction mode never makes.
    assert pooler.local_settings("transaction", RELAY) == {"enable_bitmapscan": "off"}


def test_listen_dsn() -> None:
    assert pooler.listen_dsn("none", "postgresql://a@pooler/db") == "postgresql://a@pooler/db"
    assert pooler.listen_dsn("transaction", "postgresql://a@pooler/db") is None
    direct = "postgresql://a@db/db"
    assert pooler.listen_dsn("transaction", "postgresql://a@pooler/db", direct) == direct


def test_psycopg_kwargs() -> None:
    assert pooler.psycopg_kwargs("transaction") == {"prepare_threshold": None}
    assert pooler.psycopg_kwargs("none") == {}


@pytest.mark.parametrize(
    ("url", "args"),
    [
        (
            "postgresql+asyncpg://a@h/db",
            {"statement_cache_size": 0, "prepared_statement_cache_size": 0},
        ),
        ("postgresql+psycopg://a@h/db", {"prepare_threshold": None}),
        ("postgresql://a@h/db", {"prepare_threshold": None}),  # SQLAlchemy's default: psycopg
        ("postgresql+psycopg2://a@h/db", {}),
        ("sqlite+aiosqlite:///x.db", {}),
    ],
)
def test_sqlalchemy_connect_args(url: str, args: dict[str, object]) -> None:
    assert pooler.sqlalchemy_connect_args(url, "transaction") == args
    assert pooler.sqlalchemy_connect_args(url, "none") == {}


def test_sqlalchemy_driver_it_cannot_set_up() -> None:
    with pytest.raises(ConfigError, match="'pg8000' is not a driver"):
        pooler.sqlalchemy_connect_args("postgresql+pg8000://a@h/db", "transaction")


def test_hint_for_pooler_symptoms_only() -> None:
    assert "TETHER_DATABASE_POOLER=transaction" in pooler.hint_for(
        RuntimeError("unsupported startup parameter: plan_cache_mode")
    )
    assert pooler.hint_for(RuntimeError('prepared statement "__asyncpg_stmt_1__" does not exist'))
    assert pooler.hint_for(RuntimeError("connection refused")) == ""


def test_setting_from_the_environment() -> None:
    env = {"TETHER_DATABASE_URL": "postgresql://a@h/db", "TETHER_DATABASE_POOLER": "TRANSACTION"}
    assert load_settings(env=env).database().pooler is PoolerMode.TRANSACTION
    assert (
        load_settings(env={"TETHER_DATABASE_URL": "postgresql://a@h/db"}).database().pooler
        is PoolerMode.NONE
    )
    with pytest.raises(
        ConfigError, match="TETHER_DATABASE_POOLER='pgbouncer': must be none, session"
    ):
        load_settings(env={"TETHER_DATABASE_POOLER": "pgbouncer"})
