"""``[sinks.rabbitmq]`` and ``[sinks.redis]``: defaults, environment variables, and errors that
name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.config import load_settings
from tether.core.errors import ConfigError
from tether.sinks.builtin import RabbitMQSettings, RedisStreamsSettings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tether.toml"
    path.write_text(text)
    return path


def test_sections_are_read_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[sinks.rabbitmq]\nurl = "amqp://app:pw@mq:5672/"\nrouting_key = "ev.{type}"\n'
        '[sinks.redis]\nurl = "redis://cache:6379/1"\nmaxlen = 1000\n',
    )
    s = load_settings(path, env={"TETHER_SINKS_REDIS_DEDUP_WINDOW": "600"})
    assert s.sinks.enabled() == ("rabbitmq", "redis")
    assert s.sinks.section("rabbitmq") == RabbitMQSettings(
        url="amqp://app:pw@mq:5672/", routing_key="ev.{type}"
    )
    assert s.sinks.section("redis") == RedisStreamsSettings(
        url="redis://cache:6379/1", maxlen=1000, dedup_window=600.0
    )


def test_without_a_url_they_stay_off() -> None:
    assert load_settings(env={}).sinks.enabled() == ()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TETHER_SINKS_RABBITMQ_URL": "http://mq"}, "must be an amqp:// or amqps:// URL"),
        ({"TETHER_SINKS_RABBITMQ_EXCHANGE": "a b"}, "must be an exchange name"),
        ({"TETHER_SINKS_RABBITMQ_CONFIRM_TIMEOUT": "0"}, "must be seconds, > 0 and <= 300"),
        ({"TETHER_SINKS_RABBITMQ_ROUTING_KEY": "{nope}"}, "uses unknown fields ['nope']"),
        ({"TETHER_SINKS_REDIS_URL": "cache:6379"}, "must be a redis://, rediss:// or unix:// URL"),
        (
            {"TETHER_SINKS_REDIS_STREAM": "s:{tenant"},
            "stream key template 's:{tenant' is malformed",
        ),
        ({"TETHER_SINKS_REDIS_MAXLEN": "0"}, "must be an integer >= 1"),
        (
            {"TETHER_SINKS_REDIS_MAXLEN": "10", "TETHER_SINKS_REDIS_MINID_AGE": "60"},
            "give maxlen or minid_age, not both",
        ),
    ],
)
def test_bad_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env=env)
    assert message in str(e.value)
