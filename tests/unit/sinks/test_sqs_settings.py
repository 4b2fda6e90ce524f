"""``[sinks.sqs]``: read from the file and the environment, off without a queue, and errors
that name the key (and never show a secret)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.config import load_settings
from tether.core.errors import ConfigError
from tether.sinks import registry
from tether.sinks.plugin_sqs import SQS, SqsSettings
from tether.sinks.sqs import group_id, queue_name, region_of


def test_the_plugin_is_found_by_its_entry_point() -> None:
    assert registry.get("sqs") is SQS


def test_section_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "tether.toml"
    path.write_text(
        '[sinks.sqs]\nqueue = "orders.fifo"\nendpoint_url = "http://127.0.0.1:4566"\n'
        'region = "eu-west-1"\naccess_key_id = "AKIDEXAMPLE"\n'
    )
    s = load_settings(
        path,
        env={"TETHER_SINKS_SQS_SECRET_ACCESS_KEY": "s3cret", "TETHER_SINKS_SQS_TIMEOUT": "3"},
    )
    assert "sqs" in s.sinks.enabled()
    section = s.sinks.section("sqs")
    assert isinstance(section, SqsSettings)
    assert section.queue == "orders.fifo"
    assert section.endpoint_url == "http://127.0.0.1:4566"
    assert section.secret_access_key is not None
    assert section.secret_access_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(section)
    assert section.timeout == 3.0
    assert section.max_message_bytes is None  # the queue's own MaximumMessageSize


def test_without_a_queue_it_stays_off() -> None:
    assert "sqs" not in load_settings(env={}).sinks.enabled()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TETHER_SINKS_SQS_QUEUE": "has space"}, "a queue name is 1-80 letters, digits"),
        ({"TETHER_SINKS_SQS_QUEUE": "x" * 81}, "a queue name is 1-80 letters, digits"),
        ({"TETHER_SINKS_SQS_QUEUE": "https://sqs.example"}, "a queue URL looks like"),
        ({"TETHER_SINKS_SQS_REGION": "EU WEST"}, "must be an AWS region like us-east-1"),
        ({"TETHER_SINKS_SQS_ENDPOINT_URL": "localhost:4566"}, "must be an http:// or https:// URL"),
        ({"TETHER_SINKS_SQS_MAX_MESSAGE_BYTES": "2000000"}, "must be bytes, 1024..1048576"),
        ({"TETHER_SINKS_SQS_MAX_IN_FLIGHT": "0"}, "must be an integer 1..100"),
        ({"TETHER_SINKS_SQS_MAX_ATTEMPTS": "11"}, "must be an integer 1..10"),
        ({"TETHER_SINKS_SQS_TIMEOUT": "0"}, "must be seconds, > 0 and <= 300"),
        (
            {"TETHER_SINKS_SQS_QUEUE": "q", "TETHER_SINKS_SQS_ACCESS_KEY_ID": "AKID"},
            "give access_key_id and secret_access_key together, or neither",
        ),
        (
            {"TETHER_SINKS_SQS_QUEUE": "q", "TETHER_SINKS_SQS_SESSION_TOKEN": "tok"},
            "session_token needs access_key_id and secret_access_key",
        ),
    ],
)
def test_bad_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env=env)
    assert message in str(e.value)
    assert "sqs" in str(e.value).lower()


def test_an_empty_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tether.toml"
    path.write_text('[sinks.sqs]\nqueue = "q"\naccess_key_id = "AKID"\nsecret_access_key = ""\n')
    with pytest.raises(ConfigError, match=r"sinks\.sqs\.secret_access_key"):
        load_settings(path, env={})


def test_a_secret_is_not_shown_in_an_error() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(
            env={"TETHER_SINKS_SQS_QUEUE": "q", "TETHER_SINKS_SQS_SECRET_ACCESS_KEY": "s3cret"}
        )
    assert "s3cret" not in str(e.value)


def test_names_and_regions_come_from_queue_urls() -> None:
    url = "https://sqs.eu-central-1.amazonaws.com/123456789012/orders.fifo"
    assert queue_name(url) == "orders.fifo"
    assert queue_name("orders") == "orders"
    assert region_of(url) == "eu-central-1"
    assert region_of("http://127.0.0.1:4566/000000000000/orders") is None


def test_fifo_group_ids_sqs_cannot_take_are_hashed_one_per_key() -> None:
    from tether.core.envelope import make_event

    plain = make_event("A", {}, aggregate_type="order", aggregate_id="o-1")
    assert group_id(plain) == "order:o-1"
    spaced = make_event("A", {}, partition_key="key with spaces é")
    again = make_event("B", {}, partition_key="key with spaces é")
    assert group_id(spaced) == group_id(again)
    assert group_id(spaced).startswith("sha256-") and len(group_id(spaced)) <= 128
    bare = make_event("A", {})
    assert group_id(bare) == str(bare.id)
