"""The Slack message a sink renders: within Slack's limits, escaped, clipped safely; the pacer."""

from __future__ import annotations

import pytest

from tether.core.envelope import make_event
from tether.core.errors import ConfigError
from tether.sinks.slack import MAX_HEADER, MAX_TEXT, Pacer, SlackSettings, escape, render


def test_message_has_header_fields_code_and_context() -> None:
    event = make_event(
        "OrderPlaced", {"total": 12.5}, aggregate_type="order", aggregate_id="o-1", tenant_id="acme"
    )
    body = render(event)
    assert body["text"] == "OrderPlaced · order/o-1"
    header, fields, code, context = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "OrderPlaced · order/o-1"},
    }
    texts = [f["text"] for f in fields["fields"]]
    assert texts[:3] == ["*Type*\nOrderPlaced", "*Subject*\norder/o-1", "*Tenant*\nacme"]
    assert texts[3].startswith("*Time*\n")
    assert code["text"]["text"] == '```\n{\n  "total": 12.5\n}\n```'
    assert str(event.id) in context["elements"][0]["text"]


def test_markup_characters_are_escaped_everywhere() -> None:
    event = make_event("Alert", {"html": "<b>&</b>", "fence": "```"}, aggregate_id="<@U123>")
    body = render(event)
    flat = repr(body)
    assert "<" not in flat and ">" not in flat.replace("->", "")
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in body["blocks"][2]["text"]["text"]
    assert body["blocks"][2]["text"]["text"].count("```") == 2  # the payload's fence is broken


def test_a_large_payload_is_clipped_to_slacks_limit_without_cutting_an_entity() -> None:
    event = make_event("Big", {"pad": "&" * 5000})
    code = render(event)["blocks"][2]["text"]["text"]
    assert len(code) <= MAX_TEXT
    assert code.endswith("…\n```")
    inner = code[4:-5]
    assert inner.replace("&amp;", "").strip('{\n "pad:') == ""  # only whole entities


def test_escape_clips_counting_entities() -> None:
    assert escape("a<b", 10) == "a&lt;b"
    assert escape("<<<<", 9) == "&lt;&lt;…"
    assert len(escape("x" * 500, MAX_HEADER)) == MAX_HEADER


def test_code_chars_is_bounded() -> None:
    with pytest.raises(ConfigError, match="code_chars"):
        render(make_event("A", {}), code_chars=MAX_TEXT + 1)


def test_pacer_gives_one_slot_per_interval_and_honours_a_block() -> None:
    now = [100.0]
    pacer = Pacer(1.0, clock=lambda: now[0])
    assert pacer.reserve(deadline=100.0) == 100.0
    assert pacer.reserve(deadline=100.5) is None  # the next slot is at 101: past the deadline
    assert pacer.reserve(deadline=102.0) == 101.0
    pacer.block(30)
    assert pacer.reserve(deadline=120.0) is None
    assert pacer.reserve(deadline=131.0) == 130.0


async def test_settings_refuse_a_faster_pace_and_hide_the_url() -> None:
    from tether.sinks.slack import PLUGIN

    with pytest.raises(ValueError, match="interval"):
        SlackSettings(webhook_url="https://hooks.slack.com/services/T/B/x", interval=0.5)  # type: ignore[arg-type]
    bad = SlackSettings(webhook_url="ftp://hooks.slack.com/services/T/B/topsecret")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must be an https:// URL") as info:
        await PLUGIN.open_sink(bad)
    assert "topsecret" not in str(info.value)
    settings = SlackSettings(webhook_url="https://hooks.slack.com/services/T/B/secret")  # type: ignore[arg-type]
    assert "secret" not in repr(settings)
