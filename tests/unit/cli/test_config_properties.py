"""Property tests: any value of any setting, from any layer, gives Settings or a ConfigError.

The message of a ConfigError must name where the value came from and never show a password.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tether.config import (
    Settings,
    env_name,
    load_settings,
    mask_url,
    parse_database_url,
    settings_model,
)
from tether.core.errors import ConfigError


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted settings key, as the file and ``TETHER_*`` variables spell them."""
    keys = []
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            keys += _keys(kind, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


# Built, not written out: Hypothesis draws the string literals of this module as test data.
SECRET = "-".join(["pw", "kQ9z"])
KEYS = st.sampled_from(sorted(_keys(settings_model())))
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["0", "1", "-1", "1e309", "nan", "inf", "true", "INFO", "debug", "nats"])
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
URLS = st.sampled_from(
    [
        f"postgresql://app:{SECRET}@db/app",
        f"mysql://app:{SECRET}@db/app",
        f"nats://app:{SECRET}@nats:4222",
        "sqlite:///x.db",
        "sqlite://",
        "postgres+psycopg://",
        f"http://[::1:{SECRET}@x",
    ]
) | st.text(max_size=30)


def _layer(other: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Some settings keys with values: URLs (with a password) for URL keys, ``other`` else."""
    return st.lists(KEYS, unique=True, max_size=4).flatmap(
        lambda keys: st.fixed_dictionaries({k: URLS if k.endswith("url") else other for k in keys})
    )


def _valid_or_config_error(**layers: Any) -> Settings | None:
    try:
        return load_settings(**layers)
    except ConfigError as exc:
        message = str(exc)
    assert message
    assert SECRET not in message
    return None


@given(_layer(st.text(max_size=30)))
@example({"relay.batch_size": "abc"})
@example({"routes": '{"order.*": "nats"}'})
def test_environment_values(values: dict[str, str]) -> None:
    env = {env_name(key): value for key, value in values.items()}
    found = _valid_or_config_error(env=env)
    if found is None:
        return
    for key, value in values.items():
        if key == "database_url" and value:
            assert found.database_url == value


@given(_layer(VALUES))
def test_flag_values(values: dict[str, Any]) -> None:
    flags = {key: (value, f"--{key}") for key, value in values.items()}
    _valid_or_config_error(flags=flags, env={})


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.text(max_size=12) | KEYS, VALUES, max_size=4))
def test_config_file_tables(tmp_path: Path, table: dict[str, Any]) -> None:
    # TOML has no null; JSON is a subset of what a TOML table can hold once nulls are gone.
    path = tmp_path / "tether.toml"
    path.write_text(_toml(table))
    _valid_or_config_error(config_file=path, env={})


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=60))
def test_config_file_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tether.toml"
    path.write_bytes(content)
    _valid_or_config_error(config_file=path, env={})


@given(URLS)
def test_database_urls(url: str) -> None:
    try:
        db = parse_database_url(url)
    except ValueError:
        return
    assert db.kind in ("postgres", "sqlite")


@given(URLS | st.text())
def test_mask_url_never_shows_a_password(url: str) -> None:
    masked = mask_url(url)
    if f":{SECRET}@" in url:
        assert SECRET not in masked
    else:
        assert masked.count("@") == url.count("@")


def _toml(table: dict[str, Any]) -> str:
    lines = []
    for key, value in table.items():
        if value is None:
            continue
        lines.append(f"{json.dumps(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(value), repr(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(items) + "}"
    return json.dumps(value)
