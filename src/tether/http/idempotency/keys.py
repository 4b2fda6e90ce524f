"""Parse the Idempotency-Key header: an RFC 8941 sf-string (the draft's form) or a bare token."""

from __future__ import annotations

import re

MAX_KEY_LENGTH = 255
# A bare key: visible ASCII without the characters that would make it ambiguous in a header.
_KEY_CHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z:/=@]"
_BARE = re.compile(_KEY_CHAR + "+")
# The two accepted forms as patterns, for documentation (OpenAPI): each repetition is one
# character of the key, so the bounds are the key's length limits.
BARE_KEY_PATTERN = rf"^{_KEY_CHAR}{{1,{MAX_KEY_LENGTH}}}$"
QUOTED_KEY_PATTERN = rf'^"([ !#-\[\]-~]|\\["\\]){{1,{MAX_KEY_LENGTH}}}"$'


class InvalidKeyError(ValueError):
    """The header value is not a usable idempotency key; the message says why."""


def parse_key(raw: bytes) -> str:
    """Return the key in ``raw`` or raise :class:`InvalidKeyError`."""
    try:
        text = raw.decode("ascii").strip(" \t")
    except UnicodeDecodeError as exc:
        raise InvalidKeyError("the key must be printable ASCII") from exc
    key = _unquote(text) if text.startswith('"') else _bare(text)
    if not key:
        raise InvalidKeyError("the key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"the key is longer than {MAX_KEY_LENGTH} characters")
    return key


def _bare(text: str) -> str:
    if text and not _BARE.fullmatch(text):
        raise InvalidKeyError('a bare key may hold only token characters; quote it as "..."')
    return text


def _unquote(text: str) -> str:
    """Unquote an sf-string: printable ASCII, with only \\" and \\\\ as escapes."""
    out: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            if index + 1 >= len(text) or text[index + 1] not in '"\\':
                raise InvalidKeyError("a quoted key may escape only '\"' and '\\'")
            out.append(text[index + 1])
            index += 2
            continue
        if char == '"':
            if index != len(text) - 1:
                raise InvalidKeyError("text after the closing quote")
            return "".join(out)
        if not " " <= char <= "~":
            raise InvalidKeyError("the key must be printable ASCII")
        out.append(char)
        index += 1
    raise InvalidKeyError("the quoted key has no closing quote")
