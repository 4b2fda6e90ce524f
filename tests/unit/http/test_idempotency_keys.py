from __future__ import annotations

import pytest

from tether.http.idempotency.fingerprint import fingerprint, scope_key
from tether.http.idempotency.keys import InvalidKeyError, parse_key


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        (b"8e03978e-40d5-43e8", "8e03978e-40d5-43e8"),
        (b'"with space and \\"quote\\" and \\\\"', 'with space and "quote" and \\'),
        (b"  padded  ", "padded"),
        (b'"' + b"k" * 255 + b'"', "k" * 255),
        (b"abc:def/ghi=@", "abc:def/ghi=@"),
    ],
)
def test_valid_keys(raw: bytes, key: str) -> None:
    assert parse_key(raw) == key


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b'""',
        b"k" * 256,
        b'"' + b"k" * 256 + b'"',
        b'"unterminated',
        b'"bad \\n escape"',
        b'"text" after',
        b"bare with space",
        b'"tab\tinside"',
        "caf\u00e9".encode(),
        b"semi;colon",
    ],
)
def test_invalid_keys(raw: bytes) -> None:
    with pytest.raises(InvalidKeyError):
        parse_key(raw)


def _scope(body_headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    return {"method": "POST", "path": "/p", "query_string": b"a=1", "headers": body_headers}


def test_fingerprint_covers_chosen_headers_and_body_only() -> None:
    def fp(headers: list[tuple[bytes, bytes]], body: bytes) -> str:
        return fingerprint(_scope(headers), frozenset({b"content-type"}), body)

    base = fp([(b"content-type", b"application/json")], b"{}")
    assert base == fp([(b"content-type", b"application/json"), (b"x-trace", b"1")], b"{}")
    assert base != fp([(b"content-type", b"text/plain")], b"{}")
    assert base != fp([(b"content-type", b"application/json")], b"{ }")


def test_scope_key_separates_every_part() -> None:
    assert scope_key("ab", "c", "POST", "/r", "k") != scope_key("a", "bc", "POST", "/r", "k")
    assert scope_key("t", "p", "POST", "/r", "k") != scope_key("t", "p", "PUT", "/r", "k")
