"""Which sinks receive which events: ordered rules matching topic and type with glob patterns.

Routing needs only an event's topic and type, so a dispatcher that works from stored items
(with those two columns) rather than :class:`Event` objects uses :meth:`Router.sinks_for_kind`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tether.core.envelope import Event
from tether.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Route:
    """Events whose topic matches ``topic`` and whose type matches ``type`` go to ``sinks``."""

    sinks: tuple[str, ...]
    topic: str = "*"
    type: str = "*"

    def matches(self, event: Event) -> bool:
        return self.matches_kind(event.topic, event.type)

    def matches_kind(self, topic: str, type: str) -> bool:
        return fnmatch.fnmatchcase(topic, self.topic) and fnmatch.fnmatchcase(type, self.type)


class Router:
    """Every matching route contributes its sinks. Results are cached per (topic, type)."""

    def __init__(self, routes: Sequence[Route], known_sinks: Iterable[str]) -> None:
        known = set(known_sinks)
        for route in routes:
            unknown = [s for s in route.sinks if s not in known]
            if unknown:
                raise ConfigError(
                    f"route {route.topic!r}/{route.type!r} names unknown sink(s) {unknown}; "
                    f"configured sinks: {sorted(known)}"
                )
        self._routes = tuple(routes)
        self._cache: dict[tuple[str, str], frozenset[str]] = {}

    @classmethod
    def everything_to(cls, sink_names: Sequence[str]) -> Router:
        return cls([Route(tuple(sink_names))], sink_names)

    @classmethod
    def from_mapping(cls, rules: Mapping[str, Sequence[str]], known_sinks: Iterable[str]) -> Router:
        """``{"order.*": ["nats"], "*": ["log"]}``: keys are topic globs, or ``type:<glob>``."""
        routes = []
        for pattern, sinks in rules.items():
            if pattern.startswith("type:"):
                routes.append(Route(tuple(sinks), type=pattern[5:]))
            else:
                routes.append(Route(tuple(sinks), topic=pattern))
        return cls(routes, known_sinks)

    def sinks_for(self, event: Event) -> frozenset[str]:
        return self.sinks_for_kind(event.topic, event.type)

    def sinks_for_kind(self, topic: str, type: str) -> frozenset[str]:
        key = (topic, type)
        found = self._cache.get(key)
        if found is None:
            found = frozenset(
                s for r in self._routes if r.matches_kind(topic, type) for s in r.sinks
            )
            if len(self._cache) < 100_000:
                self._cache[key] = found
        return found
