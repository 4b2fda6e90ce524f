"""Log sink: one JSON line per event, CloudEvents structured form, to a text stream or logging.

The payload is spliced in as the JSON bytes the event already carries; nothing is decoded.
A stream that fails to write (closed pipe, full disk) makes the whole sink unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TextIO

import orjson

from tether.core.envelope import Event
from tether.core.errors import ConfigError, SinkError, SinkUnavailableError
from tether.sinks.base import OK, Outcome, SinkFeatures


def structured_line(event: Event) -> str:
    """The event as one line of CloudEvents structured-mode JSON (``data`` last)."""
    attrs = orjson.dumps(event.cloudevent_attributes())
    return (attrs[:-1] + b',"data":' + event.data + b"}").decode()


class LogSink:
    """Writes to ``stream`` (e.g. ``sys.stdout``) or, when none is given, logs each line
    through ``logger`` at ``level``. Every written line counts as delivered."""

    features = SinkFeatures(dedups_by_id=False, durable=False, can_be_unavailable=True)

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        logger: logging.Logger | None = None,
        level: int = logging.INFO,
        name: str = "log",
        flush: bool = True,
    ) -> None:
        if stream is not None and logger is not None:
            raise ConfigError("LogSink takes a stream or a logger, not both")
        self.name = name
        self._stream = stream
        self._logger = logger or logging.getLogger("tether.events")
        self._level = level
        self._flush = flush
        self._closed = False

    async def publish(self, events: Sequence[Event]) -> Sequence[Outcome]:
        if self._closed:
            raise SinkError(f"sink {self.name!r} is closed; create a new one to publish")
        if not events:
            return []
        lines = [structured_line(event) for event in events]
        if self._stream is None:
            for line in lines:
                self._logger.log(self._level, line)
            return [OK] * len(events)
        try:
            self._stream.write("\n".join(lines) + "\n")
            if self._flush:
                self._stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: write to a closed file
            raise SinkUnavailableError(f"sink {self.name!r} cannot write: {exc}") from exc
        return [OK] * len(events)

    async def close(self) -> None:
        self._closed = True
