"""The storage port of authorization: a handful of reads and one transactional writer.

Contract (checked by ``tests/contract/authz`` against every adapter):

* ``load_grants(user)`` returns every direct grant and every capability reached through a
  role assignment, expired ones included (the decision compares expiry with its own clock).
* ``transaction(session)`` writes inside the caller's session or connection when one is
  given and never commits it; without one the adapter opens and commits its own.
* Every write made through a transaction calls ``changed`` before it ends, which bumps the
  shared version counter, and, where the backend can, emits the outbox event and the
  cross-process notification in the same transaction, so they exist iff the change commits.
* ``version()`` is a counter that grows on every committed change; pollers compare it.
* Writes naming an unknown user, org, role or capability are refused by the adapter.
* With ``tenant`` (tenancy on; an org id is a tenant id), ``load_grants`` and ``list_grants``
  return only grants in that org, never those of another org nor grants to every org, and
  ``transaction`` scopes its transaction to the tenant (row-level security on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from tether.authz.model import Grant, GrantRecord


class AuthzTx(Protocol):
    async def add_user(self, user: str) -> None: ...
    async def add_org(self, org: str) -> None: ...
    async def user_exists(self, user: str) -> bool: ...
    async def org_exists(self, org: str) -> bool: ...
    async def role_exists(self, role: str) -> bool: ...
    async def define_role(self, role: str, capabilities: Iterable[str]) -> None: ...

    async def grant(
        self,
        user: str,
        capability: str,
        org: str | None,
        *,
        expires_at: datetime | None,
        granted_by: str | None,
        now: datetime,
    ) -> None:
        """Create or replace the direct grant of ``capability`` to ``user`` in ``org``."""

    async def revoke(self, user: str, capability: str, org: str | None) -> bool:
        """Delete one direct grant; True if it existed."""

    async def assign_role(
        self,
        user: str,
        role: str,
        org: str,
        *,
        expires_at: datetime | None,
        granted_by: str | None,
        now: datetime,
    ) -> None: ...

    async def unassign_role(self, user: str, role: str, org: str) -> bool: ...

    async def changed(
        self, event_type: str, payload: dict[str, Any], user: str | None, org: str | None
    ) -> None:
        """Record that grants of ``user`` (None: possibly everyone) changed."""


class AuthzStore(Protocol):
    async def sync_capabilities(self, names: Iterable[str]) -> None:
        """Insert every name not yet stored; never deletes (old grants keep their meaning)."""

    async def capabilities(self) -> frozenset[str]: ...
    async def load_grants(self, user: str, tenant: str | None = None) -> list[Grant]: ...
    async def list_grants(
        self, *, user: str | None = None, org: str | None = None, tenant: str | None = None
    ) -> list[GrantRecord]: ...
    async def version(self) -> int: ...
    def transaction(
        self, session: Any = None, tenant: str | None = None
    ) -> AbstractAsyncContextManager[AuthzTx]: ...
    async def close(self) -> None: ...
