"""Where the relay delivers events. Each module is one adapter of the :class:`Sink` port."""

from tether.sinks.base import OK, Outcome, Sink, SinkFeatures

__all__ = ["OK", "Outcome", "Sink", "SinkFeatures"]
