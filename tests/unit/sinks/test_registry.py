"""Sinks found by name: entry points, plugins registered in code, and their configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from tether.commands.relay import no_sink_message, open_sinks
from tether.config import load_settings
from tether.core.errors import ConfigError
from tether.sinks import registry
from tether.sinks.base import Sink
from tether.sinks.memory import MemorySink
from tether.sinks.registry import SinkPlugin, SinkSettings, hint


class WebhookSettings(SinkSettings):
    url: str | None = hint("an https:// URL", default=None, pattern=r"^https://.+")
    timeout: float = hint("seconds, > 0", default=5.0, gt=0)


opened: list[WebhookSettings] = []


async def open_webhook(settings: WebhookSettings) -> Sink:
    opened.append(settings)
    return MemorySink("webhook")


WEBHOOK = SinkPlugin("webhook", WebhookSettings, open_webhook, enabled=lambda s: s.url is not None)


@pytest.fixture
def webhook() -> Iterator[SinkPlugin[WebhookSettings]]:
    opened.clear()
    with registry.registered(WEBHOOK) as plugin:
        yield plugin


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tether.toml"
    path.write_text(text)
    return path


def test_built_in_sinks_come_from_entry_points() -> None:
    assert {"log", "memory", "nats"} <= set(registry.names())
    assert registry.get("nats").settings.__name__ == "NatsSettings"


def test_a_plugin_registered_in_code_is_configured_from_toml(
    webhook: SinkPlugin[WebhookSettings], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        '[sinks.webhook]\nurl = "https://hooks.example/in"\ntimeout = 2.5\n'
        '[routes]\n"order.*" = ["webhook"]\n',
    )
    s = load_settings(path, env={})
    assert s.sinks.enabled() == ("webhook",)
    assert s.sinks.section("webhook") == WebhookSettings(
        url="https://hooks.example/in", timeout=2.5
    )
    sinks = asyncio.run(open_sinks(s, asyncio.Event(), patient=False))
    assert sinks is not None and [sink.name for sink in sinks] == ["webhook"]
    assert opened == [WebhookSettings(url="https://hooks.example/in", timeout=2.5)]


def test_a_plugin_is_configured_from_the_environment(webhook: SinkPlugin[WebhookSettings]) -> None:
    s = load_settings(env={"TETHER_SINKS_WEBHOOK_URL": "https://h.example/x"})
    assert s.sinks.enabled() == ("webhook",)


def test_a_bad_value_names_the_sink_and_key(
    webhook: SinkPlugin[WebhookSettings], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, '[sinks.webhook]\nurl = "http://plain"\n'), env={})
    assert str(e.value) == "tether.toml: sinks.webhook.url='http://plain': must be an https:// URL"
    with pytest.raises(ConfigError, match=r"^TETHER_SINKS_WEBHOOK_TIMEOUT='0': must be seconds"):
        load_settings(env={"TETHER_SINKS_WEBHOOK_TIMEOUT": "0"})
    with pytest.raises(ConfigError, match=r"unknown key 'sinks.webhook.retries'"):
        load_settings(write(tmp_path, "[sinks.webhook]\nretries = 3\n"), env={})


def test_unknown_sink_names_list_the_known_ones(tmp_path: Path) -> None:
    # Every sink the installed entry points declare (optional adapters such as pubsub add to
    # the shipped ones), sorted.
    names = registry.names()
    assert {"log", "memory", "nats", "rabbitmq", "redis"} <= set(names)
    assert list(names) == sorted(names)
    known = f"known sinks are {', '.join(names)}"
    with pytest.raises(ConfigError, match=f"unknown sink 'kafka' in \\[sinks.kafka\\]: {known}"):
        load_settings(write(tmp_path, '[sinks.kafka]\nbrokers = "k:9092"\n'), env={})
    with pytest.raises(
        ConfigError, match=f"TETHER_SINKS_KAFKA_BROKERS: no such sink setting; {known}"
    ):
        load_settings(env={"TETHER_SINKS_KAFKA_BROKERS": "k:9092"})
    with pytest.raises(ConfigError, match=f"unknown sink 'kafka': {known}"):
        registry.get("kafka")
    with pytest.raises(ConfigError, match=f"one or more of {', '.join(names)}"):
        load_settings(env={"TETHER_ROUTES": '{"order.*": ["kafka"]}'})


def test_without_an_enabled_sink_the_message_says_how_to_enable_each() -> None:
    message = no_sink_message()
    assert "nats: --nats-url or sinks.nats.url" in message
    assert "log: --log-sink" in message


def test_a_plugin_needs_defaults_and_a_proper_name() -> None:
    class Strict(SinkSettings):
        url: str

    with pytest.raises(ConfigError, match=r"sink 'strict': every field of Strict needs a default"):
        SinkPlugin("strict", Strict, open_webhook, enabled=lambda s: True)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"sink name 'Web-Hook'"):
        SinkPlugin("Web-Hook", WebhookSettings, open_webhook, enabled=lambda s: True)


def test_a_factory_must_name_its_sink_after_the_plugin() -> None:
    async def wrong(settings: WebhookSettings) -> Sink:
        return MemorySink("other")

    plugin = SinkPlugin("webhook", WebhookSettings, wrong, enabled=lambda s: True)
    with pytest.raises(ConfigError, match=r"made a sink named 'other'"):
        asyncio.run(plugin.open_sink(WebhookSettings()))


def test_broken_entry_points_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(group: str) -> list[EntryPoint]:
        return [EntryPoint("webhook", "tether.sinks.base:OK", group)]

    monkeypatch.setattr(registry, "entry_points", fake)
    monkeypatch.setattr(registry, "_discovered", None)
    with pytest.raises(
        ConfigError, match=r"entry point 'webhook' .* gives Outcome, not a SinkPlugin"
    ):
        registry.names()
    monkeypatch.setattr(
        registry, "entry_points", lambda group: [EntryPoint("x", "no_such_module:X", group)]
    )
    with pytest.raises(
        ConfigError, match=r"entry point 'x' .* cannot be loaded: ModuleNotFoundError"
    ):
        registry.names()


def test_registered_restores_what_it_replaced(webhook: SinkPlugin[WebhookSettings]) -> None:
    other = SinkPlugin("webhook", WebhookSettings, open_webhook, enabled=lambda s: False)
    with registry.registered(other):
        assert registry.get("webhook") is other
    assert registry.get("webhook") is WEBHOOK
