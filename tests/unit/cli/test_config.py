"""Settings: flags > environment > TOML file > defaults, with errors that name key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.config import load_settings, parse_database_url
from tether.core.errors import ConfigError
from tether.core.redact import mask_url


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tether.toml"
    path.write_text(text)
    return path


def test_defaults_without_any_source() -> None:
    s = load_settings(env={})
    assert s.relay.batch_size == 500
    assert s.database_url is None
    assert s.sinks.enabled() == ()


def test_flag_beats_env_beats_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[relay]\nbatch_size = 10\nconcurrency = 3\nretry_base = 0.5\n")
    env = {"TETHER_RELAY_BATCH_SIZE": "20", "TETHER_RELAY_CONCURRENCY": "4"}
    s = load_settings(path, {"relay.batch_size": (30, "--batch-size")}, env=env)
    assert (s.relay.batch_size, s.relay.concurrency, s.relay.retry_base) == (30, 4, 0.5)


def test_config_file_named_by_env(tmp_path: Path) -> None:
    path = write(tmp_path, 'database_url = "sqlite:///shop.db"\n[sinks.log]\nenabled = true\n')
    s = load_settings(env={"TETHER_CONFIG": str(path)})
    assert s.database().kind == "sqlite"
    assert s.sinks.enabled() == ("log",)


def test_unset_flags_fall_through() -> None:
    s = load_settings(flags={"relay.batch_size": (None, "--batch-size")}, env={})
    assert s.relay.batch_size == 500


def test_env_error_names_variable_value_and_range() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env={"TETHER_RELAY_BATCH_SIZE": "abc"})
    assert str(e.value) == "TETHER_RELAY_BATCH_SIZE='abc': must be an integer 1..10000"


def test_file_error_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "metrics_port = 70000\n")
    with pytest.raises(ConfigError, match=r"tether.toml: metrics_port=70000: must be a TCP port"):
        load_settings(path, env={})


def test_flag_error_names_flag() -> None:
    with pytest.raises(ConfigError, match=r"^--batch-size=0: must be an integer 1\.\.10000$"):
        load_settings(flags={"relay.batch_size": (0, "--batch-size")}, env={})


def test_unknown_file_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, "[relay]\nbatch_sise = 5\n")
    with pytest.raises(
        ConfigError, match=r"unknown key 'relay.batch_sise' \(did you mean 'relay.batch_size'\?\)"
    ):
        load_settings(path, env={})


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "relay = [\n"), env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})


def test_cross_field_rules() -> None:
    with pytest.raises(ConfigError, match=r"retry_base must not exceed relay\.retry_cap"):
        load_settings(env={"TETHER_RELAY_RETRY_BASE": "10", "TETHER_RELAY_RETRY_CAP": "5"})


def test_routes_from_env_and_unknown_sink() -> None:
    s = load_settings(env={"TETHER_ROUTES": '{"order.*": ["log"]}'})
    assert s.routes == {"order.*": ("log",)}
    with pytest.raises(ConfigError, match="route 'x' -> \\['kafka'\\]"):
        load_settings(env={"TETHER_ROUTES": '{"x": ["kafka"]}'})
    with pytest.raises(ConfigError, match="TETHER_ROUTES: must be JSON"):
        load_settings(env={"TETHER_ROUTES": "order.*=log"})


def test_database_password_never_echoed() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env={"TETHER_DATABASE_URL": "mysql://app:s3cret@db/app"})
    assert "s3cret" not in str(e.value)
    assert "mysql://app:***@db/app" in str(e.value)


def test_a_refused_secret_setting_is_never_echoed(tmp_path: Path) -> None:
    # A secret typed as SecretStr, and one recognised by its name only.
    config = tmp_path / "tether.toml"
    config.write_text("[sinks.sqs]\nsecret_access_key = 987654321\n")
    with pytest.raises(ConfigError) as e:
        load_settings(config_file=config, env={})
    assert "987654321" not in str(e.value)
    assert "sinks.sqs.secret_access_key=<redacted>" in str(e.value)


def test_mask_url() -> None:
    assert mask_url("postgresql://app:s3cret@db:5432/app") == "postgresql://app:***@db:5432/app"
    assert mask_url("postgresql://app@db/app") == "postgresql://app@db/app"
    assert mask_url("nats://t0ken@broker:4222") == "nats://***@broker:4222"
    assert mask_url("sqlite:///shop.db") == "sqlite:///shop.db"


def test_database_urls() -> None:
    assert parse_database_url("postgresql+asyncpg://a@h/d").url == "postgresql://a@h/d"
    assert parse_database_url("postgres://a@h/d").kind == "postgres"
    assert parse_database_url("sqlite:////tmp/x.db").sqlite_path == Path("/tmp/x.db")
    with pytest.raises(ValueError, match="expected"):
        parse_database_url("sqlite://x.db")


def test_the_documented_config_file_is_valid(tmp_path: Path) -> None:
    """docs/cli.md shows every key; it must load exactly as written."""
    import re

    doc = (Path(__file__).resolve().parents[3] / "docs" / "cli.md").read_text()
    block = re.search(r"```toml\n(.*?)```", doc, re.DOTALL)
    assert block is not None
    s = load_settings(write(tmp_path, block.group(1)), env={})
    assert s.sinks.enabled() == ("log", "nats")
    assert s.routes["order.*"] == ("nats", "log")
    assert s.relay.retry_policy().max_attempts == s.relay.retry_max_attempts == 10
