"""Policy tests as data: rows of (user, capability, org, time) -> allow or deny, clock pinned.

A table is plain text, one case a line, columns separated by whitespace::

    # user   capability              org    at                    expect  [owns]
    alice    availability:post       acme   2026-01-01T00:00:00Z  allow
    alice    availability:edit       acme   2026-01-01T00:00:00Z  allow   yes
    bob      trade:approve-high      -      2026-01-08T00:00:01Z  deny

``-`` as org means no organization. With the optional ``owns`` column (yes/no) the row is an
ownership check of ``resource:action`` (``:any``, or ``:own`` when the user owns it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from tether.authz.service import Authz
from tether.core.clock import FrozenClock

_EXPECT = {"allow": True, "deny": False}
_OWNS = {"yes": True, "no": False}


@dataclass(frozen=True, slots=True)
class PolicyCase:
    user: str
    capability: str
    org: str | None
    at: datetime
    expected: bool
    owns: bool | None = None
    line: int = 0

    def __str__(self) -> str:
        owns = "" if self.owns is None else f" owns={'yes' if self.owns else 'no'}"
        expect = "allow" if self.expected else "deny"
        return (
            f"{self.user} {self.capability} {self.org or '-'} {self.at.isoformat()}{owns}: {expect}"
        )


class PolicyTableError(ValueError):
    """A line of a policy table could not be read."""


def parse_table(text: str) -> list[PolicyCase]:
    cases = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            cases.append(_parse_line(line, number))
    return cases


def _parse_line(line: str, number: int) -> PolicyCase:
    cols = line.split()
    if len(cols) not in (5, 6):
        raise PolicyTableError(f"line {number}: expected 5 or 6 columns, got {len(cols)}: {line!r}")
    user, capability, org, at, expect = cols[:5]
    if expect not in _EXPECT:
        raise PolicyTableError(f"line {number}: expect must be allow or deny, got {expect!r}")
    owns = None
    if len(cols) == 6:
        if cols[5] not in _OWNS:
            raise PolicyTableError(f"line {number}: owns must be yes or no, got {cols[5]!r}")
        owns = _OWNS[cols[5]]
    try:
        when = datetime.fromisoformat(at)
    except ValueError as exc:
        raise PolicyTableError(f"line {number}: bad time {at!r}: {exc}") from exc
    if when.tzinfo is None:
        raise PolicyTableError(f"line {number}: time {at!r} needs a zone (e.g. Z)")
    return PolicyCase(
        user, capability, None if org == "-" else org, when, _EXPECT[expect], owns, number
    )


async def evaluate(authz: Authz, case: PolicyCase) -> bool:
    """The decision for one case, with the authz clock pinned to the case's time."""
    if not isinstance(authz.clock, FrozenClock):
        raise TypeError("policy tables need an Authz built with clock=FrozenClock()")
    authz.clock.set(case.at)
    if case.owns is None:
        return await authz.has(case.user, case.capability, case.org)
    owns = case.owns
    decision = await authz.check_owned(case.user, case.capability, case.org, lambda: owns)
    return decision.allowed


async def failures(authz: Authz, cases: Iterable[PolicyCase]) -> list[str]:
    """One line per case whose decision differs from the table, with the explanation."""
    failed = []
    for case in cases:
        if await evaluate(authz, case) != case.expected:
            why = (
                await authz.explain(case.user, case.capability, case.org)
                if case.owns is None
                else "ownership check"
            )
            failed.append(f"line {case.line}: {case}; got the opposite ({why})")
    return failed


async def assert_policy(authz: Authz, cases: Iterable[PolicyCase] | str) -> None:
    """Raise AssertionError listing every case that fails (use it in your own test suite)."""
    rows = parse_table(cases) if isinstance(cases, str) else list(cases)
    failed = await failures(authz, rows)
    if failed:
        raise AssertionError("policy table mismatches:\n" + "\n".join(failed))
