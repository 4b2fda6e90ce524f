"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign, verify, rotate.

A delivery carries three headers: ``webhook-id`` (the same on every retry, so receivers can drop a
repeat), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``, a space-separated list of
``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, one per active secret. During a rotation the
old and the new secret both sign, so a receiver that still holds either one keeps verifying.

Secrets never appear in ``repr``, logs or error messages: only ``str(secret)`` gives the
``whsec_...`` form, for storing it or showing it once to its owner.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from tether.core.errors import TetherError

PREFIX: Final = "whsec_"
MIN_KEY_BYTES: Final = 24
MAX_KEY_BYTES: Final = 64
DEFAULT_GRACE: Final = timedelta(hours=24)
DEFAULT_TOLERANCE_S: Final = 300
MAX_SIGNATURES: Final = 32
"""More signatures than this in one header is refused (each costs an HMAC to check)."""
_MAX_ID_CHARS: Final = 256
_MAX_TIMESTAMP_CHARS: Final = 12


class WebhookVerificationError(TetherError, ValueError):
    """A received webhook did not verify. The message says why, never with a secret in it."""


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    """One signing key. ``str()`` gives ``whsec_<base64>``; ``repr()`` hides the key."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not MIN_KEY_BYTES <= len(self.key) <= MAX_KEY_BYTES:
            raise ValueError(
                f"a webhook secret must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes long, "
                f"got {len(self.key)}"
            )

    @classmethod
    def generate(cls) -> WebhookSecret:
        return cls(_random.token_bytes(32))

    @classmethod
    def parse(cls, text: str) -> WebhookSecret:
        """Read ``whsec_<base64>``; ValueError naming the problem (not the text) when malformed."""
        if not isinstance(text, str):
            raise ValueError(f"a webhook secret must be a string, got {type(text).__name__}")
        if not text.startswith(PREFIX):
            raise ValueError(f"a webhook secret must start with {PREFIX!r}")
        encoded = text[len(PREFIX) :]
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                f"a webhook secret must be {PREFIX!r} followed by standard base64"
            ) from None
        return cls(key)

    @property
    def fingerprint(self) -> str:
        """A short, non-secret name for this key (for logs and listings)."""
        return hashlib.sha256(b"tether-webhook-secret:" + self.key).hexdigest()[:12]

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """``v1,<base64>`` for one message."""
        return "v1," + base64.b64encode(_digest(self, msg_id, timestamp, body)).decode("ascii")

    def __str__(self) -> str:
        return PREFIX + base64.b64encode(self.key).decode("ascii")

    def __repr__(self) -> str:
        return f"WebhookSecret(fingerprint={self.fingerprint!r})"


def sign(
    msg_id: str, timestamp: int, body: bytes, secrets: Sequence[WebhookSecret]
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed with every secret given."""
    _check_id(msg_id)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(f"webhook timestamp must be non-negative Unix seconds, got {timestamp!r}")
    if not secrets:
        raise ValueError("cannot sign a webhook without at least one secret")
    _check_body(body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(s.signature(msg_id, timestamp, body) for s in secrets),
    }


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[WebhookSecret],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Check a received webhook; WebhookVerificationError saying why when it does not verify.

    Refuses missing headers, timestamps further than ``tolerance_s`` from ``now`` either way,
    and bodies none of ``secrets`` signed. Comparisons are constant-time. Replays inside the
    tolerance window are the receiver's to drop by ``webhook-id`` (see ``ReplayGuard``).
    """
    _check_body(body)
    if not secrets:
        raise WebhookVerificationError("no secret to verify the webhook with")
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = _header(lowered, "webhook-id")
    stamp = _header(lowered, "webhook-timestamp")
    signatures = _header(lowered, "webhook-signature")
    try:
        _check_id(msg_id)
    except ValueError as exc:
        raise WebhookVerificationError(str(exc)) from None
    timestamp = _timestamp(stamp)
    current = time.time() if now is None else now
    if timestamp < current - tolerance_s:
        raise WebhookVerificationError(
            f"webhook timestamp is {int(current - timestamp)} s old, over the {tolerance_s} s "
            "tolerance (stale or replayed)"
        )
    if timestamp > current + tolerance_s:
        raise WebhookVerificationError(
            f"webhook timestamp is {int(timestamp - current)} s in the future, over the "
            f"{tolerance_s} s tolerance"
        )
    offered = _offered(signatures)
    expected = [_digest(s, msg_id, timestamp, body) for s in secrets]
    # Compare every pair, so the time taken does not tell which secret or signature matched.
    matched = False
    for theirs in offered:
        for ours in expected:
            matched |= hmac.compare_digest(theirs, ours)
    if not matched:
        raise WebhookVerificationError(
            "no webhook signature matches (forged, or signed with a secret we do not hold)"
        )


def _check_body(body: object) -> None:
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(
            f"pass the raw body as bytes, got {type(body).__name__} (a decoded or re-encoded "
            "body may differ from the bytes that were signed)"
        )


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise WebhookVerificationError(f"missing header {name}")
    return value


def _check_id(msg_id: str) -> None:
    if not isinstance(msg_id, str) or not msg_id:
        raise ValueError("webhook-id must be a non-empty string")
    if len(msg_id) > _MAX_ID_CHARS or not msg_id.isprintable() or not msg_id.isascii():
        raise ValueError(f"webhook-id must be at most {_MAX_ID_CHARS} printable ASCII characters")


def _timestamp(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_TIMESTAMP_CHARS:
        raise WebhookVerificationError("webhook-timestamp must be whole Unix seconds")
    return int(text)


def _offered(header: str) -> list[bytes]:
    parts = header.split()
    if len(parts) > MAX_SIGNATURES:
        raise WebhookVerificationError(
            f"webhook-signature carries {len(parts)} signatures, more than {MAX_SIGNATURES}"
        )
    offered = []
    for part in parts:
        version, sep, encoded = part.partition(",")
        if not sep:
            raise WebhookVerificationError("webhook-signature entries must be 'v1,<base64>'")
        if version != "v1":
            continue  # other schemes (v1a: asymmetric) are not ours to check
        try:
            offered.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise WebhookVerificationError(
                "webhook-signature holds a signature that is not base64"
            ) from None
    if not offered:
        raise WebhookVerificationError("webhook-signature holds no v1 signature")
    return offered


def _digest(secret: WebhookSecret, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + bytes(body)
    return hmac.new(secret.key, signed, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class SecretRing:
    """The current secret and the previous ones still honoured until their ``expires_at``."""

    current: WebhookSecret
    previous: tuple[tuple[WebhookSecret, datetime], ...] = ()

    def active(self, now: datetime | None = None) -> list[WebhookSecret]:
        """The secrets to sign with at ``now``: the current one first, then unexpired old ones."""
        at = _aware(now)
        return [self.current, *(s for s, expires in self.previous if expires > at)]

    def rotate(
        self,
        new: WebhookSecret,
        grace: timedelta = DEFAULT_GRACE,
        now: datetime | None = None,
    ) -> SecretRing:
        """A ring whose current secret is ``new``; the old current one signs on for ``grace``."""
        if grace < timedelta(0):
            raise ValueError(f"rotation grace must not be negative, got {grace}")
        at = _aware(now)
        kept = tuple((s, e) for s, e in self.previous if e > at and s != new)
        if new == self.current:
            return SecretRing(new, kept)
        return SecretRing(new, ((self.current, at + grace), *kept))


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("pass a timezone-aware datetime (naive times are ambiguous)")
    return now


class ReplayGuard:
    """Remembers the ``webhook-id`` values seen within the tolerance window, for a receiver.

    One process only: a receiver running several processes keeps the ids in its database
    (a unique key on webhook-id, kept for the tolerance window) instead.
    """

    def __init__(self, tolerance_s: int = DEFAULT_TOLERANCE_S, max_ids: int = 100_000) -> None:
        self._tolerance_s = tolerance_s
        self._max_ids = max_ids
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, msg_id: str, now: float | None = None) -> bool:
        """True the first time ``msg_id`` is seen, False for a repeat (drop it)."""
        current = time.time() if now is None else now
        self._forget_before(current - 2 * self._tolerance_s)
        if msg_id in self._seen:
            return False
        self._seen[msg_id] = current
        if len(self._seen) > self._max_ids:
            self._seen.popitem(last=False)
        return True

    def _forget_before(self, cutoff: float) -> None:
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if seen_at >= cutoff:
                return
            del self._seen[oldest]
