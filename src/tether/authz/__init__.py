"""Capability-based authorization: ``resource:action[:modifier]`` granted per organization.

Start here: declare capabilities in a ``StrEnum``, build a :class:`Registry`, an
:class:`Authz` over a store (:class:`SqlAuthzStore` for PostgreSQL/SQLite,
:class:`MemoryAuthzStore` for tests), and check with ``has``/``require``/``explain``.
See ``docs/authz.md``.
"""

from tether.authz.audit import AuditMode, AuditRecord, DecisionLog
from tether.authz.cache import GrantCache
from tether.authz.errors import (
    AuthzError,
    Forbidden,
    InvalidCapabilityName,
    InvalidGrantError,
    UnknownCapabilityError,
    UnknownSubjectError,
)
from tether.authz.memory import MemoryAuthzStore
from tether.authz.model import Decision, Grant, GrantRecord, Reason
from tether.authz.names import SUPER_ADMIN, Registry, parse
from tether.authz.service import Authz
from tether.authz.sql import SqlAuthzStore
from tether.authz.watch import InvalidationWatcher, listen_dsn_of

__all__ = [
    "SUPER_ADMIN",
    "AuditMode",
    "AuditRecord",
    "Authz",
    "AuthzError",
    "Decision",
    "DecisionLog",
    "Forbidden",
    "Grant",
    "GrantCache",
    "GrantRecord",
    "InvalidCapabilityName",
    "InvalidGrantError",
    "InvalidationWatcher",
    "MemoryAuthzStore",
    "Reason",
    "Registry",
    "SqlAuthzStore",
    "UnknownCapabilityError",
    "UnknownSubjectError",
    "listen_dsn_of",
    "parse",
]
