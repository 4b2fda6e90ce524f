"""``[sinks.nats] url``: one URL or a comma-separated list (the servers of a cluster)."""

from __future__ import annotations

import pytest

from tether.config import load_settings
from tether.core.errors import ConfigError
from tether.sinks.builtin import NatsSettings


def test_one_url_is_one_server() -> None:
    assert NatsSettings(url="nats://127.0.0.1:4222").servers() == ["nats://127.0.0.1:4222"]


def test_a_comma_separated_list_is_the_cluster_in_order() -> None:
    settings = load_settings(
        env={"TETHER_SINKS_NATS_URL": "nats://n1:4222, nats://n2:4222,tls://t0k@n3:4222"}
    )
    section = settings.sinks.section("nats")
    assert isinstance(section, NatsSettings)
    assert section.servers() == ["nats://n1:4222", "nats://n2:4222", "tls://t0k@n3:4222"]


@pytest.mark.parametrize(
    ("value", "which"),
    [
        ("http://n1:4222", ""),
        ("nats://", ""),
        ("nats://n1:4222,,nats://n2:4222", " (URL 2 of 3 is not one)"),
        ("nats://n1:4222,nats://n2:4222 x", " (URL 2 of 2 is not one)"),
        ("nats://n1:4222,redis://n2:6379", " (URL 2 of 2 is not one)"),
    ],
)
def test_each_url_of_the_list_is_checked(value: str, which: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env={"TETHER_SINKS_NATS_URL": value})
    assert str(e.value).endswith(
        "must be a nats://, tls://, ws:// or wss:// URL, or several separated by commas" + which
    )


def test_a_secret_in_any_url_of_the_list_is_masked() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env={"TETHER_SINKS_NATS_URL": "nats://s3cret@n1:4222,http://s3cret@n2"})
    assert "s3cret" not in str(e.value)
    assert "'nats://***@n1:4222,http://***@n2'" in str(e.value)
