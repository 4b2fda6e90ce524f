"""Which channels an event goes to: rules from event type to channel templates.

``{"RequirementPublished": ["org:{tenant}", "topic:requirements"], "*": ["user:{user}"]}``
sends a requirement to its tenant's org channel and to the tenant's ``requirements`` topic,
and every event that names a user to that user's channel. Templates may use ``{tenant}``,
``{user}``, ``{aggregate_id}`` and ``{type}``; a ``topic:`` channel is the event tenant's.
Rules are checked when built, so a typo fails at start-up, not on the first event.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Protocol

from tether.realtime.channels import BadChannel, Channel, check_topic, route

FIELDS = ("tenant", "user", "aggregate_id", "type")
_TYPE = re.compile(r"\*|[A-Za-z][A-Za-z0-9_.:-]{0,127}")


class Routed(Protocol):
    """What routing reads of an event (:class:`tether.core.envelope.Event` has it)."""

    @property
    def type(self) -> str: ...
    @property
    def tenant_id(self) -> str | None: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def aggregate_id(self) -> str | None: ...


class Unroutable(ValueError):
    """A rule matched but a field its template needs is missing or not a valid id."""


class Routes:
    def __init__(self, rules: Mapping[str, Sequence[str]]) -> None:
        self.rules: dict[str, tuple[str, ...]] = {}
        for event_type, templates in rules.items():
            if not _TYPE.fullmatch(event_type):
                raise ValueError(f"routing rule {event_type!r}: an event type or '*'")
            if isinstance(templates, str):
                raise ValueError(f"routing rule {event_type!r}: give a list of channels")
            self.rules[event_type] = tuple(_check_template(t) for t in templates)

    def channels(self, event: Routed) -> list[Channel]:
        """Every channel ``event`` goes to (none when no rule matches)."""
        templates = self.rules.get(event.type, ()) + self.rules.get("*", ())
        values = {
            "tenant": event.tenant_id,
            "user": event.user_id,
            "aggregate_id": event.aggregate_id,
            "type": event.type,
        }
        found: dict[str, Channel] = {}
        for template in templates:
            names = _fields(template)
            missing = [name for name in names if not values.get(name)]
            if missing:
                if event.type not in self.rules:
                    continue  # a catch-all rule applies only to events that have the fields
                raise Unroutable(f"{event.type} has no {', '.join(missing)} for {template!r}")
            try:
                channel = route(template.format(**values), tenant=event.tenant_id)
            except BadChannel as exc:
                raise Unroutable(f"{event.type} -> {template!r}: {exc}") from None
            found[channel.key] = channel
        return list(found.values())


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def _check_template(template: str) -> str:
    if not isinstance(template, str):
        raise ValueError(f"channel template {template!r} must be a string")
    try:
        names = _fields(template)
    except ValueError as exc:
        raise ValueError(f"channel template {template!r}: {exc}") from None
    unknown = [name for name in names if name not in FIELDS]
    if unknown:
        raise ValueError(
            f"channel template {template!r}: unknown field(s) {unknown}; use {', '.join(FIELDS)}"
        )
    kind, _, rest = template.partition(":")
    if kind not in ("user", "org", "topic") or not rest:
        raise ValueError(f"channel template {template!r}: user:..., org:... or topic:<name>")
    if kind == "topic" and not names:
        try:
            check_topic(rest)
        except BadChannel as exc:
            raise ValueError(f"channel template {template!r}: {exc}") from None
    return template
