"""Values of the authorization model: grants as loaded for a user, and decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Grant:
    """One capability a user holds, directly or through a role.

    ``org`` None means every organization (a global grant). ``expires_at`` None means never.
    A grant is active strictly before its expiry: at ``expires_at`` exactly it is expired.
    """

    capability: str
    org: str | None
    expires_at: datetime | None = None
    role: str | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at

    def describe(self) -> str:
        via = f"role {self.role}" if self.role else "direct grant"
        scope = f"org {self.org}" if self.org is not None else "all orgs"
        until = f", until {self.expires_at.isoformat()}" if self.expires_at else ""
        return f"{self.capability} ({via}, {scope}{until})"


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """A stored direct grant or role assignment, as listed by the CLI and admin tools."""

    user: str
    org: str | None
    capability: str | None
    role: str | None
    expires_at: datetime | None
    granted_by: str | None
    granted_at: datetime | None


class Reason(StrEnum):
    GRANTED = "granted"
    NO_GRANT = "no_grant"
    EXPIRED = "expired"
    OTHER_ORG = "other_org"
    NOT_OWNER = "not_owner"
    NO_TENANT = "no_tenant"  # tenancy on, and the check named no valid org (tenant)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check and why; ``str()`` gives a sentence for logs and the CLI."""

    allowed: bool
    user: str
    capability: str
    org: str | None
    reason: Reason
    grant: Grant | None = None
    expired_at: datetime | None = None
    other_orgs: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        who = f"{self.user} {self.capability} in {self.org or 'no org'}"
        if self.allowed:
            assert self.grant is not None
            return f"allowed: {who} by {self.grant.describe()}"
        if self.reason is Reason.EXPIRED and self.expired_at is not None:
            return f"denied: {who}: grant expired at {self.expired_at.isoformat()}"
        if self.reason is Reason.OTHER_ORG:
            return f"denied: {who}: granted only in other org(s) {', '.join(self.other_orgs)}"
        if self.reason is Reason.NO_TENANT:
            return f"denied: {who}: tenancy is on and no valid org (tenant) was named"
        if self.reason is Reason.NOT_OWNER:
            return f"denied: {who}: holds only the :own capability and does not own the resource"
        return f"denied: {who}: no grant"
