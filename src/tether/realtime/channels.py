"""Channel names: ``user:<id>``, ``org:<id>`` and ``topic:<name>``.

A topic belongs to an organization: a client of org ``acme`` subscribing to
``topic:requirements`` receives acme's requirements and never another org's, so the key a
publication travels under (:attr:`Channel.key`) carries the org while the name the client
sees does not. Ids and names are checked here, once, before anything else looks at them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_ID = re.compile(r"[A-Za-z0-9_.@-]{1,128}")
_TOPIC = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


class Kind(StrEnum):
    USER = "user"
    ORG = "org"
    TOPIC = "topic"


class BadChannel(ValueError):
    """A channel name that is not one of the three forms."""


@dataclass(frozen=True, slots=True)
class Channel:
    kind: Kind
    name: str
    org: str | None = None  # topics only: the organization it belongs to

    @property
    def public(self) -> str:
        """The name clients use and see in pushes."""
        return f"{self.kind}:{self.name}"

    @property
    def key(self) -> str:
        """The name publications travel under between processes (unique across orgs)."""
        if self.kind is Kind.TOPIC:
            return f"org:{self.org}/topic:{self.name}"
        return self.public


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise BadChannel(
            f"{what} must be 1-128 letters, digits or . _ @ -, not {str(value)[:40]!r}"
        )
    return value


def check_topic(value: str) -> str:
    if not isinstance(value, str) or not _TOPIC.fullmatch(value):
        raise BadChannel(
            "a topic name is 1-64 lower-case letters, digits, . _ - starting with a letter or "
            f"digit, not {str(value)[:40]!r}"
        )
    return value


def parse(name: object, *, org: str | None) -> Channel:
    """The channel a client names, topics bound to the client's ``org``."""
    if not isinstance(name, str) or ":" not in name:
        raise BadChannel(f"channel must be user:<id>, org:<id> or topic:<name>, not {name!r:.60}")
    kind, _, rest = name.partition(":")
    if kind == Kind.USER:
        return Channel(Kind.USER, check_id(rest, "a user id"))
    if kind == Kind.ORG:
        return Channel(Kind.ORG, check_id(rest, "an org id"))
    if kind == Kind.TOPIC:
        if org is None:
            raise BadChannel("topic channels belong to an organization; this client has none")
        return Channel(Kind.TOPIC, check_topic(rest), org)
    raise BadChannel(f"channel must be user:<id>, org:<id> or topic:<name>, not {name!r:.60}")


def route(template: str, *, tenant: str | None) -> Channel:
    """A channel a routing rule names after its fields were filled in (the sink's side)."""
    kind, _, rest = template.partition(":")
    if kind == Kind.TOPIC:
        if tenant is None:
            raise BadChannel(f"{template!r}: topic channels need the event's tenant")
        return Channel(Kind.TOPIC, check_topic(rest), check_id(tenant, "the tenant"))
    return parse(template, org=None)


def from_key(key: str) -> Channel:
    """The channel behind a :attr:`Channel.key`."""
    if key.startswith("org:") and "/topic:" in key:
        org_part, _, topic = key.partition("/topic:")
        return Channel(Kind.TOPIC, topic, org_part[4:])
    return parse(key, org=None)
