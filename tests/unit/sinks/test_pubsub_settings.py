"""``[sinks.pubsub]``: defaults, the environment, errors that name the key; topic ids and
request splitting of the Pub/Sub sink (no emulator needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.config import load_settings
from tether.core.envelope import make_event
from tether.core.errors import ConfigError
from tether.sinks import _keys, registry
from tether.sinks._pubsub_names import topic_template
from tether.sinks.plugin_pubsub import PUBSUB, PubSubSettings
from tether.sinks.pubsub import MAX_REQUEST_MESSAGES, _Message, _split


def test_read_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "tether.toml"
    path.write_text(
        '[sinks.pubsub]\nproject = "my-project"\ntopic = "tether-{topic}"\n'
        'emulator_host = "127.0.0.1:8085"\n'
    )
    s = load_settings(path, env={"TETHER_SINKS_PUBSUB_TIMEOUT": "2.5"})
    assert s.sinks.enabled() == ("pubsub",)
    assert s.sinks.section("pubsub") == PubSubSettings(
        project="my-project", topic="tether-{topic}", emulator_host="127.0.0.1:8085", timeout=2.5
    )


def test_without_a_project_it_stays_off_and_the_plugin_is_registered() -> None:
    assert load_settings(env={}).sinks.enabled() == ()
    assert registry.get("pubsub") is PUBSUB
    defaults = PubSubSettings()
    assert (defaults.topic, defaults.timeout, defaults.max_message_bytes) == (
        "{topic}",
        5.0,
        10_000_000,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TETHER_SINKS_PUBSUB_PROJECT": "My_Project"}, "must be a Google Cloud project id"),
        ({"TETHER_SINKS_PUBSUB_PROJECT": "abc"}, "must be a Google Cloud project id"),
        ({"TETHER_SINKS_PUBSUB_TOPIC": "{nope}"}, "uses unknown fields ['nope']"),
        ({"TETHER_SINKS_PUBSUB_TOPIC": "ev/{topic}"}, "cannot make a Pub/Sub topic id"),
        ({"TETHER_SINKS_PUBSUB_TOPIC": "goog-{topic}"}, "cannot make a Pub/Sub topic id"),
        ({"TETHER_SINKS_PUBSUB_TOPIC": "{topic"}, "topic template '{topic' is malformed"),
        ({"TETHER_SINKS_PUBSUB_EMULATOR_HOST": "localhost"}, "must be host:port of a Pub/Sub"),
        ({"TETHER_SINKS_PUBSUB_API_ROOT": "pubsub.googleapis.com"}, "must be an https:// URL"),
        ({"TETHER_SINKS_PUBSUB_TIMEOUT": "0"}, "must be seconds, > 0 and <= 300"),
        ({"TETHER_SINKS_PUBSUB_MAX_MESSAGE_BYTES": "10000001"}, "must be bytes, 1..10000000"),
        (
            {
                "TETHER_SINKS_PUBSUB_EMULATOR_HOST": "127.0.0.1:8085",
                "TETHER_SINKS_PUBSUB_API_ROOT": "https://pubsub.googleapis.com/v1",
            },
            "give emulator_host or api_root, not both",
        ),
        (
            {
                "TETHER_SINKS_PUBSUB_EMULATOR_HOST": "127.0.0.1:8085",
                "TETHER_SINKS_PUBSUB_CREDENTIALS_FILE": "/etc/key.json",
            },
            "credentials_file is for Google Cloud",
        ),
    ],
)
def test_bad_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env=env)
    assert message in str(e.value)


def test_topic_ids_are_checked_per_event() -> None:
    topic_of = topic_template("tether.{topic}")
    assert topic_of(make_event("A", {}, topic="order")) == "tether.order"
    with pytest.raises(_keys.KeyTemplateError, match="not a Pub/Sub topic id"):
        topic_of(make_event("A", {}, topic="billing:invoice"))  # ':' is not allowed
    fixed = topic_template("orders")
    assert fixed(make_event("A", {}, topic="x/y")) == "orders"
    with pytest.raises(ConfigError, match="cannot make a Pub/Sub topic id"):
        topic_template("ab")  # under 3 characters


def test_requests_hold_at_most_1000_messages_and_about_10_mb() -> None:
    small = [_Message.of(i, make_event("A", {"n": i}, topic="t")) for i in range(2001)]
    assert [len(p) for p in _split(small)] == [MAX_REQUEST_MESSAGES, MAX_REQUEST_MESSAGES, 1]
    big = make_event("A", {"pad": "x" * 3_000_000}, topic="t", max_payload_bytes=4_000_000)
    large = [_Message.of(i, big) for i in range(4)]  # 4 MB of base64 each
    parts = _split(large)
    assert [len(p) for p in parts] == [2, 2]
    assert all(sum(m.wire_size for m in p) <= 10_000_000 for p in parts)
    assert large[0].size > len(big.data)  # attributes count toward Pub/Sub's size
