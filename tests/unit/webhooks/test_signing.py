"""Standard Webhooks signing: the ``standardwebhooks`` package verifies ours and we verify its."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as TheirError

from tether.webhooks.signing import (
    ReplayGuard,
    SecretRing,
    WebhookSecret,
    WebhookVerificationError,
    sign,
    verify,
)

BODY = b'{"type":"order.paid","data":{"id":42}}'


def test_their_library_verifies_our_signature() -> None:
    secret = WebhookSecret.generate()
    headers = sign("msg_1", int(time.time()), BODY, [secret])
    assert Webhook(str(secret)).verify(BODY, headers) == {"type": "order.paid", "data": {"id": 42}}


def test_we_verify_their_signature() -> None:
    secret = WebhookSecret.generate()
    now = datetime.now(UTC)
    signature = Webhook(str(secret)).sign("msg_2", now, BODY.decode())
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    verify(BODY, headers, [secret])


def test_header_names_are_case_insensitive() -> None:
    secret = WebhookSecret.generate()
    headers = {k.title(): v for k, v in sign("m", int(time.time()), BODY, [secret]).items()}
    verify(BODY, headers, [secret])


def test_rotation_signs_with_old_and_new_for_the_grace_window() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    old, new = WebhookSecret.generate(), WebhookSecret.generate()
    ring = SecretRing(old).rotate(new, grace=timedelta(hours=24), now=t0)
    during = ring.active(t0 + timedelta(hours=23))
    assert during == [new, old]
    headers = sign("msg_r", int(time.time()), BODY, during)
    assert len(headers["webhook-signature"].split(" ")) == 2
    # A receiver still on the old secret, and one already on the new, both verify.
    Webhook(str(old)).verify(BODY, headers)
    Webhook(str(new)).verify(BODY, headers)
    verify(BODY, headers, [old])
    verify(BODY, headers, [new])
    after = ring.active(t0 + timedelta(hours=24, seconds=1))
    assert after == [new]
    headers = sign("msg_r2", int(time.time()), BODY, after)
    with pytest.raises(TheirError):
        Webhook(str(old)).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError, match="no webhook signature matches"):
        verify(BODY, headers, [old])


def test_rotating_twice_keeps_each_previous_secret_until_its_own_expiry() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    a, b, c = (WebhookSecret.generate() for _ in range(3))
    ring = SecretRing(a).rotate(b, now=t0).rotate(c, now=t0 + timedelta(hours=12))
    assert ring.active(t0 + timedelta(hours=13)) == [c, b, a]
    assert ring.active(t0 + timedelta(hours=25)) == [c, b]
    assert ring.active(t0 + timedelta(hours=37)) == [c]
    assert SecretRing(a).rotate(a, now=t0).active(t0) == [a]


def test_forged_body_or_secret_is_rejected_by_both() -> None:
    secret = WebhookSecret.generate()
    headers = sign("msg_f", int(time.time()), BODY, [secret])
    tampered = BODY.replace(b"42", b"43")
    with pytest.raises(TheirError):
        Webhook(str(secret)).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError, match="no webhook signature matches"):
        verify(tampered, headers, [secret])
    forged = sign("msg_f", int(time.time()), BODY, [WebhookSecret.generate()])
    with pytest.raises(WebhookVerificationError):
        verify(BODY, forged, [secret])
    # Moving the signature onto another id fails: the id is signed.
    moved = {**headers, "webhook-id": "msg_other"}
    with pytest.raises(WebhookVerificationError):
        verify(BODY, moved, [secret])


def test_stale_and_future_timestamps_are_rejected_by_both() -> None:
    secret = WebhookSecret.generate()
    now = time.time()
    stale = sign("msg_s", int(now) - 301, BODY, [secret])
    future = sign("msg_s", int(now) + 301, BODY, [secret])
    for headers, reason in ((stale, "old"), (future, "future")):
        with pytest.raises(TheirError):
            Webhook(str(secret)).verify(BODY, headers)
        with pytest.raises(WebhookVerificationError, match=reason):
            verify(BODY, headers, [secret], now=now)
    verify(BODY, stale, [secret], now=now, tolerance_s=600)


def test_replay_is_dropped_by_webhook_id() -> None:
    secret = WebhookSecret.generate()
    now = time.time()
    headers = sign("msg_once", int(now), BODY, [secret])
    replays = ReplayGuard(tolerance_s=300)
    verify(BODY, headers, [secret], now=now)
    assert replays.first_time(headers["webhook-id"], now=now)
    verify(BODY, headers, [secret], now=now + 10)  # the signature still holds...
    assert not replays.first_time(headers["webhook-id"], now=now + 10)  # ...the id does not
    # Past the tolerance the timestamp check refuses it, so the guard may forget the id.
    with pytest.raises(WebhookVerificationError, match="old"):
        verify(BODY, headers, [secret], now=now + 301)
    assert replays.first_time("msg_new", now=now + 700)
    assert len(replays._seen) == 1


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing header webhook-id"),
        ({"webhook-id": "m"}, "missing header webhook-timestamp"),
        ({"webhook-id": "m", "webhook-timestamp": "1"}, "missing header webhook-signature"),
        (
            {"webhook-id": "m", "webhook-timestamp": "1.5", "webhook-signature": "v1,AA=="},
            "whole Unix seconds",
        ),
        (
            {"webhook-id": "m", "webhook-timestamp": "-1", "webhook-signature": "v1,AA=="},
            "whole Unix seconds",
        ),
        (
            {"webhook-id": "m", "webhook-timestamp": "9" * 40, "webhook-signature": "v1,AA=="},
            "whole Unix seconds",
        ),
        (
            {"webhook-id": "m\n", "webhook-timestamp": "1", "webhook-signature": "v1,AA=="},
            "printable",
        ),
        (
            {"webhook-id": "m", "webhook-timestamp": "NOW", "webhook-signature": "v1,AA=="},
            "whole Unix seconds",
        ),
    ],
)
def test_malformed_headers_are_named(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(WebhookVerificationError, match=reason):
        verify(BODY, headers, [WebhookSecret.generate()], now=1)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ("AA==", "'v1,<base64>'"),
        ("v1,***", "not base64"),
        ("v1a,AAAA", "no v1 signature"),
        (" ".join(["v1,AA=="] * 33), "more than 32"),
    ],
)
def test_malformed_signatures_are_named(signature: str, reason: str) -> None:
    headers = {"webhook-id": "m", "webhook-timestamp": "100", "webhook-signature": signature}
    with pytest.raises(WebhookVerificationError, match=reason):
        verify(BODY, headers, [WebhookSecret.generate()], now=100)


def test_other_schemes_are_skipped_when_a_v1_matches() -> None:
    secret = WebhookSecret.generate()
    headers = sign("m", 100, BODY, [secret])
    headers["webhook-signature"] = "v1a,c2lnbmF0dXJl " + headers["webhook-signature"]
    verify(BODY, headers, [secret], now=100)


def test_secret_parse_round_trip_and_errors() -> None:
    secret = WebhookSecret.generate()
    assert WebhookSecret.parse(str(secret)) == secret
    assert str(secret).startswith("whsec_")
    with pytest.raises(ValueError, match="must start with 'whsec_'"):
        WebhookSecret.parse("sk_abc")
    with pytest.raises(ValueError, match="standard base64"):
        WebhookSecret.parse("whsec_not base64!")
    with pytest.raises(ValueError, match="24 to 64 bytes"):
        WebhookSecret.parse("whsec_" + base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="must be a string"):
        WebhookSecret.parse(b"whsec_x")  # type: ignore[arg-type]


def test_secrets_never_show_in_repr_or_errors() -> None:
    secret = WebhookSecret.generate()
    text = str(secret)
    encoded = text.removeprefix("whsec_")
    ring = SecretRing(secret).rotate(WebhookSecret.generate(), now=datetime.now(UTC))
    for shown in (repr(secret), repr(ring), repr([secret]), f"{ring!r}"):
        assert encoded not in shown
        assert secret.key.hex() not in shown
    assert secret.fingerprint in repr(secret)
    bad = text[:-4] + "!!!!"
    with pytest.raises(ValueError) as parse_error:
        WebhookSecret.parse(bad)
    assert encoded[:-4] not in str(parse_error.value)
    headers = sign("m", 100, BODY, [WebhookSecret.generate()])
    with pytest.raises(WebhookVerificationError) as verify_error:
        verify(BODY, headers, [secret], now=100)
    assert encoded not in str(verify_error.value)


def test_sign_refuses_bad_arguments() -> None:
    secret = WebhookSecret.generate()
    with pytest.raises(ValueError, match="at least one secret"):
        sign("m", 1, BODY, [])
    with pytest.raises(ValueError, match="non-empty"):
        sign("", 1, BODY, [secret])
    with pytest.raises(ValueError, match="printable"):
        sign("a\r\nX-Evil: 1", 1, BODY, [secret])
    with pytest.raises(ValueError, match="Unix seconds"):
        sign("m", -5, BODY, [secret])
    with pytest.raises(ValueError, match="timezone-aware"):
        SecretRing(secret).active(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="negative"):
        SecretRing(secret).rotate(secret, grace=timedelta(seconds=-1))
    with pytest.raises(TypeError, match="raw body as bytes, got str"):
        sign("m", 1, BODY.decode(), [secret])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="raw body as bytes"):
        verify(BODY.decode(), sign("m", 1, BODY, [secret]), [secret], now=1)  # type: ignore[arg-type]
    verify(bytearray(BODY), sign("m", 1, BODY, [secret]), [secret], now=1)
