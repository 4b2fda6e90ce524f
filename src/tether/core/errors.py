"""One exception hierarchy. Every message says what was wrong and, where it helps, what to do."""

from __future__ import annotations


class TetherError(Exception):
    """Base class of every error Tether raises on purpose."""


class ConfigError(TetherError):
    """A setting is missing or invalid."""


class EventValidationError(TetherError, ValueError):
    """An event was refused before anything was written."""


class LeaseLostError(TetherError):
    """The caller no longer holds the lease on a work item (it expired and was reclaimed)."""


class NotFoundError(TetherError, LookupError):
    """The named item does not exist."""


class StoreError(TetherError):
    """The storage backend failed; the wrapped driver error is the cause."""


class SinkError(TetherError):
    """A sink could not publish an event."""


class SinkUnavailableError(SinkError):
    """The whole sink is unreachable (broker down). Events wait without spending attempts."""


class BrokerUnavailableError(TetherError):
    """A consumer's broker cannot be reached; the consumer waits and tries again."""
