"""Capability names (``resource:action[:modifier]``) and the registry declared in code.

Names are validated strictly: lower-case ASCII parts, so a name in code, in the database and
on the command line is always spelled the same way. ``resource:*`` (every action of a
resource) and ``admin:all`` (everything) are derived from the registry, never declared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from tether.authz.errors import InvalidCapabilityName, UnknownCapabilityError

SUPER_ADMIN = "admin:all"
WILDCARD = "*"
OWN = "own"
ANY = "any"

_PART = r"[a-z][a-z0-9_-]{0,39}"
# Matched with fullmatch: ``$`` alone would let "trade:view\n" through, which the database's
# CHECK constraint then refuses.
_NAME = re.compile(rf"({_PART}):({_PART}|\*)(?::({_PART}))?")


@dataclass(frozen=True, slots=True)
class ParsedName:
    resource: str
    action: str
    modifier: str | None

    @property
    def is_wildcard(self) -> bool:
        return self.action == WILDCARD


def parse(name: str) -> ParsedName:
    """Split a capability name into its parts; raise :class:`InvalidCapabilityName` if malformed."""
    match = _NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None or (match.group(2) == WILDCARD and match.group(3) is not None):
        raise InvalidCapabilityName(
            f"invalid capability name {name!r}: use resource:action or resource:action:modifier "
            "with lower-case letters, digits, '_' or '-' (a wildcard is written resource:*)"
        )
    return ParsedName(match.group(1), match.group(2), match.group(3))


@lru_cache(maxsize=4096)
def implied_by(capability: str) -> tuple[str, ...]:
    """Every grantable name that satisfies a check of ``capability``, most specific first.

    ``x:y:own`` is satisfied by ``x:y:own``, ``x:y:any``, ``x:*`` and ``admin:all``.
    Cached because the decision path calls it on every check.
    """
    parsed = parse(capability)
    names = [capability]
    if parsed.modifier == OWN:
        names.append(f"{parsed.resource}:{parsed.action}:{ANY}")
    if not parsed.is_wildcard:
        names.append(f"{parsed.resource}:{WILDCARD}")
    if capability != SUPER_ADMIN:
        names.append(SUPER_ADMIN)
    return tuple(names)


class Registry:
    """The capabilities an application declares, usually as one or more ``StrEnum`` classes.

    >>> class Cap(StrEnum):
    ...     TRADE_APPROVE = "trade:approve"
    >>> registry = Registry(Cap)
    """

    def __init__(self, *sources: Iterable[str] | type[Enum]) -> None:
        declared: set[str] = set()
        for source in sources:
            for item in source:
                name = item.value if isinstance(item, Enum) else item
                declared.add(self._declarable(str(name)))
        self._declared = frozenset(declared)
        self._resources = frozenset(parse(n).resource for n in declared)
        wildcards = {f"{r}:{WILDCARD}" for r in self._resources}
        self._known = self._declared | wildcards | {SUPER_ADMIN}

    @staticmethod
    def _declarable(name: str) -> str:
        if parse(name).is_wildcard:
            raise InvalidCapabilityName(
                f"{name!r} is a wildcard: declare concrete capabilities; resource:* is derived"
            )
        return name

    @property
    def declared(self) -> frozenset[str]:
        return self._declared

    @property
    def known(self) -> frozenset[str]:
        """Declared names plus the derived ``resource:*`` wildcards and ``admin:all``."""
        return self._known

    def check(self, name: str) -> str:
        """Return ``name`` if it may be checked or granted; raise otherwise."""
        if name in self._known:  # the decision path: one set lookup
            return name
        parse(name)
        raise UnknownCapabilityError(
            f"unknown capability {name!r}: declare it in the application's registry "
            f"(known: {', '.join(sorted(self._declared)) or 'none'})"
        )

    def check_owned(self, base: str) -> tuple[str, str]:
        """For an ownership check on ``resource:action`` return its ``:own`` and ``:any`` names."""
        parsed = parse(base)
        if parsed.modifier is not None or parsed.is_wildcard:
            raise InvalidCapabilityName(
                f"ownership checks take resource:action without a modifier, got {base!r}"
            )
        return self.check(f"{base}:{OWN}"), self.check(f"{base}:{ANY}")
