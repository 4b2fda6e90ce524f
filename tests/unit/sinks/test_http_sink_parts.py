"""The HTTP sink's pure parts: header encoding, Retry-After, custom headers, settings."""

from __future__ import annotations

import email.utils
from urllib.parse import unquote

import pytest

from tether.core.envelope import make_event
from tether.core.errors import ConfigError
from tether.sinks.http import HttpSettings, check_headers, cloudevent_headers, retry_after, where


def test_ce_headers_are_percent_encoded_per_the_http_binding() -> None:
    event = make_event("OrderPlaced", {}, aggregate_id='100% Zoë "x"', user_id="Zoë-7")
    headers = cloudevent_headers(event)
    assert headers["ce-subject"] == "100%25%20Zo%C3%AB%20%22x%22"
    assert unquote(headers["ce-userid"]) == "Zoë-7"
    assert all(v.isascii() and v.isprintable() for v in headers.values())
    assert headers["ce-time"].endswith("Z")
    assert headers["content-type"] == "application/json"
    assert "ce-datacontenttype" not in headers


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("120") == 120.0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    assert retry_after("-5") is None
    at = email.utils.formatdate(1_000_060, usegmt=True)
    assert retry_after(at, now=1_000_000) == pytest.approx(60)
    assert retry_after(email.utils.formatdate(0, usegmt=True), now=1_000_000) == 0.0


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"Bad Name": "x"}, "not an HTTP token"),
        ({"ce-id": "x"}, "set by the sink"),
        ({"Webhook-Signature": "x"}, "set by the sink"),
        ({"Content-Type": "text/plain"}, "set by the sink"),
        ({"X-Auth": "a\r\nInjected: 1"}, "one line"),
        ({"X-Auth": "Zoë"}, "printable ASCII"),
    ],
)
def test_custom_headers_are_checked(headers: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        check_headers(headers)


def test_where_hides_the_path() -> None:
    assert (
        where("https://n8n.example.com:5678/webhook/6f1c-secret") == "https://n8n.example.com:5678"
    )


async def test_bad_secrets_and_headers_are_refused_when_the_sink_opens_without_echoing_them() -> (
    None
):
    # Not by the model: a settings error quotes the value it refused, and these are secrets.
    from tether.sinks.http import PLUGIN

    bad = HttpSettings(url="https://n8n.example.com/webhook/x", secrets=("sk_live_topsecret",))  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match=r"sinks\.http\.secrets: secret 1: a webhook secret must start"
    ) as info:
        await PLUGIN.open_sink(bad)
    assert "topsecret" not in str(info.value)
    header = HttpSettings(url="https://n8n.example.com/x", headers={"X-Idempotency-Key": "1"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="set by the sink"):
        await PLUGIN.open_sink(header)
    with pytest.raises(ValueError, match="url"):
        HttpSettings(url="ftp://n8n.example.com/x")
    assert HttpSettings().url is None  # the section may be absent
