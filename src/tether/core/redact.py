"""Secrets out of URLs before they reach a message, a log line or a table."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


def mask_url(url: str) -> str:
    """``scheme://user:secret@host/db`` → ``scheme://user:***@host/db``; other text unchanged.
    A comma-separated list of URLs (a NATS cluster) is masked URL by URL."""
    parts_of = url.split(",")
    if len(parts_of) > 1 and all("://" in part for part in parts_of):
        return ",".join(mask_url(part) for part in parts_of)
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/@]*@", "//***@", url)
    if "@" not in parts.netloc:
        return url
    user, host = parts.netloc.rsplit("@", 1)
    if ":" in user:
        return urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}"))
    # A lone user part is a name for databases but a secret token for NATS and the like.
    if parts.scheme.split("+", 1)[0] in ("postgresql", "postgres", "sqlite"):
        return url
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


_SECRET_IN_URL = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)[^@\s]+@")


def mask_secrets(text: str) -> str:
    """Every ``scheme://user:secret@`` inside ``text`` (a message, not one URL) shown as
    ``scheme://user:***@``."""
    return _SECRET_IN_URL.sub(r"\1***@", text)
