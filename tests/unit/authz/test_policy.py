from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.authz.conftest import REGISTRY
from tether.authz import Authz, MemoryAuthzStore
from tether.authz.policy import PolicyTableError, assert_policy, parse_table

TABLE = """
# user  capability             org     at                     expect  owns
alice   trade:approve          acme    2026-01-07T23:59:59Z   allow
alice   trade:approve          acme    2026-01-08T00:00:01Z   deny     # expired
alice   trade:approve          globex  2026-01-02T00:00:00Z   deny     # other org
alice   availability:edit      acme    2026-01-02T00:00:00Z   allow   yes
alice   availability:edit      acme    2026-01-02T00:00:00Z   deny    no
bob     trade:view             -       2026-01-02T00:00:00Z   deny
"""


async def test_table_passes_and_a_wrong_row_is_reported(authz: Authz) -> None:
    week = datetime(2026, 1, 8, tzinfo=UTC)
    await authz.grant("alice", "trade:approve", "acme", expires_at=week)
    await authz.grant("alice", "availability:edit:own", "acme")
    await assert_policy(authz, TABLE)
    wrong = TABLE + "bob trade:view acme 2026-01-02T00:00:00Z allow\n"
    with pytest.raises(AssertionError, match=r"line 9: bob trade:view acme .*no grant"):
        await assert_policy(authz, wrong)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a trade:view acme", "expected 5 or 6 columns"),
        ("a trade:view acme 2026-01-01T00:00:00Z maybe", "allow or deny"),
        ("a trade:view acme 2026-01-01T00:00:00 allow", "needs a zone"),
        ("a trade:view acme yesterday allow", "bad time"),
        ("a trade:view acme 2026-01-01T00:00:00Z allow perhaps", "yes or no"),
    ],
)
def test_bad_rows_name_their_line(line: str, message: str) -> None:
    with pytest.raises(PolicyTableError, match=f"line 1: .*{message}"):
        parse_table(line)


async def test_policy_tables_need_a_frozen_clock() -> None:
    authz = Authz(MemoryAuthzStore(), REGISTRY)
    with pytest.raises(TypeError, match="FrozenClock"):
        await assert_policy(authz, "a trade:view acme 2026-01-01T00:00:00Z deny")
