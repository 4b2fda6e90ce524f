"""Where the relay delivers events. Each module is one adapter of the :class:`Sink` port."""

from tether.sinks.base import Outcome, Sink

__all__ = ["Outcome", "Sink"]
