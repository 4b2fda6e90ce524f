"""Templates that name where an event goes: an AMQP routing key, a Redis stream key.

``"{topic}"``, ``"events.{type}"`` or ``"{tenant}:{topic}"``: the fields are checked when the
sink is built (:class:`ConfigError`), the values per event (:class:`KeyTemplateError`, which fails
only that event, not retryable). Built keys are cached by the values the template uses.
"""

from __future__ import annotations

import operator
import string
from collections.abc import Callable

from tether.core.envelope import Event
from tether.core.errors import ConfigError

FIELDS = {
    "topic": "topic",
    "type": "type",
    "version": "version",
    "tenant": "tenant_id",
    "aggregate_type": "aggregate_type",
}
_CACHE_SIZE = 10_000

KeyFn = Callable[[Event], str]


class KeyTemplateError(ValueError):
    """This event cannot fill the template (a field it uses is empty, or the key is too long)."""


def key_template(template: str, *, what: str, max_bytes: int) -> KeyFn:
    """A function ``Event -> key`` for ``template``; ``what`` names the key in messages."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"{what} template {template!r} is malformed: {exc}") from None
    fields = [f for _, f, _, _ in parsed if f is not None]
    unknown = sorted({f for f in fields if f not in FIELDS})
    if unknown or any(not f for f in fields) or not template:
        raise ConfigError(
            f"{what} template {template!r} uses unknown fields {unknown or ['(positional)']}; "
            f"use named fields from: {', '.join(FIELDS)}"
        )
    used = tuple(dict.fromkeys(fields))
    if not used:
        if len(template.encode()) > max_bytes:
            raise ConfigError(f"{what} {template!r} is over {max_bytes} bytes")
        return lambda event: template
    # attrgetter of one name returns the value itself, of several a tuple: both hashable.
    get_key: Callable[[Event], object] = operator.attrgetter(*(FIELDS[f] for f in used))
    cache: dict[object, str] = {}

    def key_of(event: Event) -> str:
        values = get_key(event)
        found = cache.get(values)
        if found is not None:
            return found
        row = values if len(used) > 1 else (values,)
        assert isinstance(row, tuple)
        named = dict(zip(used, row, strict=True))
        missing = [name for name, value in named.items() if value is None]
        if missing:
            raise KeyTemplateError(
                f"{what} template {template!r} needs {missing}; the event has none"
            )
        built = check_length(template.format(**named), what, max_bytes)
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[values] = built
        return built

    return key_of


def check_length(key: str, what: str, max_bytes: int) -> str:
    size = len(key.encode())
    if size > max_bytes:
        raise KeyTemplateError(f"{what} {key[:80]!r}... is {size} bytes, over {max_bytes}")
    return key
