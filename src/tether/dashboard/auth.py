"""Who is looking, what they may do, and the record of what they did.

Identity: the principal an outer authentication middleware left in the ASGI scope (the
reference app's :func:`tether.http.identity.principal_of`), else the user of a signed session
cookie opened by logging in with a personal token. Tokens are stored as SHA-256 digests only.

Permission: capabilities from :mod:`tether.authz`: ``ops:view`` to look, ``ops:replay`` and
``ops:purge`` to act. Actions are POST only, carry the session's CSRF token (a form field or
the ``X-CSRF-Token`` header) and, when the browser sends an Origin, come from this host; the
session cookie is ``SameSite=Strict``. Every action's decision is written to the authz decision
log whatever its mode, with the action's details on the ``tether.dashboard.audit`` logger
under the same correlation id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from tether.authz import AuditMode, Authz, Decision, DecisionLog
from tether.authz.audit import correlation_id
from tether.core.errors import ConfigError
from tether.http.identity import principal_of

_log = logging.getLogger("tether.dashboard.audit")
MIN_TOKEN = 16


class OpsCap(StrEnum):
    VIEW = "ops:view"
    REPLAY = "ops:replay"
    PURGE = "ops:purge"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenUsers:
    """Personal login tokens, kept as ``sha256(token)`` hex digests mapped to user ids."""

    def __init__(self, digests: Mapping[str, str]) -> None:
        for d, user in digests.items():
            if len(d) != 64 or any(c not in "0123456789abcdef" for c in d):
                raise ConfigError(f"user {user!r}: token digest must be 64 lower-case hex digits")
            if not user or len(user) > 200:
                raise ConfigError("user ids must be 1 to 200 characters")
        self._digests = dict(digests)

    @classmethod
    def parse(cls, text: str, source: str = "users file") -> TokenUsers:
        """Lines ``<user> <sha256 hex of the token>``; ``#`` starts a comment."""
        digests: dict[str, str] = {}
        for n, raw in enumerate(text.splitlines(), 1):
            parts = raw.split("#", 1)[0].split()
            if not parts:
                continue
            if len(parts) != 2:
                raise ConfigError(f"{source} line {n}: expected '<user> <sha256 of token>'")
            digests[parts[1].lower()] = parts[0]
        return cls(digests)

    def user_of(self, token: str) -> str | None:
        if len(token) < MIN_TOKEN or len(token) > 512:
            return None
        wanted = digest(token)
        found = None
        for d, user in self._digests.items():  # every digest compared: constant time
            if hmac.compare_digest(d, wanted):
                found = user
        return found

    def __len__(self) -> int:
        return len(self._digests)


def user_of(request: Request) -> str | None:
    """The outer app's principal first, else the session's user."""
    outer = principal_of(request.scope)
    if outer:
        return outer
    user = request.session.get("user") if "session" in request.scope else None
    return str(user) if user else None


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def same_origin(request: Request) -> bool:
    """A browser's Origin (or Referer), when sent, names this host."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True  # not a browser, or one that sends neither: the CSRF token decides
    return urlsplit(origin).netloc == request.headers.get("host", "")


def csrf_ok(request: Request, form: Mapping[str, Any]) -> bool:
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token") or form.get("csrf") or ""
    return bool(expected) and hmac.compare_digest(str(expected), str(sent)) and same_origin(request)


class Guard:
    """Capability checks for the dashboard, and the audit of its actions."""

    def __init__(self, authz: Authz, org: str | None = None) -> None:
        self.authz = authz
        self.org = org
        self.log = authz.audit or DecisionLog(AuditMode.ALL)

    async def may(self, user: str, cap: OpsCap) -> bool:
        """For showing pages and buttons (decided, and logged as authz's mode says)."""
        return await self.authz.has(user, cap.value, self.org)

    async def shows(self, user: str, cap: OpsCap) -> bool:
        """Whether to show an action's buttons: decided without a log record (a viewer's
        every page would log two refusals); acting is decided and logged again."""
        return (await self.authz.explain(user, cap.value, self.org)).allowed

    async def decide_action(self, user: str, cap: OpsCap, action: dict[str, Any]) -> Decision:
        """For acting: the decision is recorded whatever the log's mode, with the action's
        details under one correlation id."""
        decision = await self.authz.explain(user, cap.value, self.org)
        action_id = f"dashboard-{uuid.uuid4()}"
        token = correlation_id.set(action_id)
        try:
            self.log.record(decision, datetime.now(UTC))
        finally:
            correlation_id.reset(token)
        _log.info(
            "dashboard %s %s by %s: %s",
            "allowed" if decision.allowed else "refused",
            cap.value,
            user,
            action,
            extra={"dashboard_action": {**action, "id": action_id, "user": user}},
        )
        return decision

    def done(self, user: str, cap: OpsCap, action: dict[str, Any], count: int) -> None:
        _log.info(
            "dashboard %s by %s done: %d items %s",
            cap.value, user, count, action,
            extra={"dashboard_action": {**action, "user": user, "count": count}},
        )  # fmt: skip
