"""Authorization errors. Each message names the capability, user or org at fault."""

from __future__ import annotations

from tether.core.errors import ConfigError, NotFoundError, TetherError


class AuthzError(TetherError):
    """Base class of every authorization error."""


class InvalidCapabilityName(AuthzError, ConfigError, ValueError):
    """A capability name does not follow ``resource:action[:modifier]``."""


class UnknownCapabilityError(AuthzError, ConfigError, LookupError):
    """A capability name is well formed but not declared in the registry.

    Raised at start-up or command time so a typo never turns into a silent deny.
    """


class UnknownSubjectError(AuthzError, NotFoundError):
    """A grant named a user, org or role that Tether does not know."""


class InvalidGrantError(AuthzError, ValueError):
    """A grant was refused before anything was written (for example an expiry in the past)."""


class Forbidden(AuthzError):
    """The user lacks a capability. ``status_code`` is 403; the message is the HTTP detail."""

    status_code = 403

    def __init__(self, capability: str) -> None:
        super().__init__(f"Missing capability: {capability}")
        self.capability = capability
