from __future__ import annotations

import random

import pytest

from tether.authz import AuditMode, AuditRecord, Authz, DecisionLog
from tether.authz.audit import correlation_id
from tether.core.errors import ConfigError


def logged(authz: Authz, mode: AuditMode, rate: float = 0.0) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    authz.audit = DecisionLog(mode, sample_rate=rate, sink=records.append, rng=random.Random(1))
    return records


async def test_all_mode_records_who_what_org_outcome_grant_and_correlation(authz: Authz) -> None:
    records = logged(authz, AuditMode.ALL)
    await authz.grant("alice", "trade:view", "acme")
    token = correlation_id.set("req-42")
    try:
        await authz.has("alice", "trade:view", "acme")
        await authz.has("alice", "trade:view", "globex")
    finally:
        correlation_id.reset(token)
    allowed, denied = records
    assert (allowed.user, allowed.capability, allowed.org, allowed.allowed) == (
        "alice",
        "trade:view",
        "acme",
        True,
    )
    assert allowed.grant == "trade:view (direct grant, org acme)"
    assert allowed.correlation_id == "req-42"
    assert (denied.allowed, denied.reason, denied.grant) == (False, "other_org", None)


async def test_denials_mode_skips_allowed_decisions(authz: Authz) -> None:
    records = logged(authz, AuditMode.DENIALS)
    await authz.grant("alice", "trade:view", "acme")
    await authz.has("alice", "trade:view", "acme")
    await authz.has("bob", "trade:view", "acme")
    await authz.check_owned("bob", "availability:edit", "acme", lambda: True)
    assert [(r.user, r.allowed) for r in records] == [("bob", False), ("bob", False)]


async def test_sample_mode_keeps_every_denial_and_a_fraction_of_allows(authz: Authz) -> None:
    records = logged(authz, AuditMode.SAMPLE, rate=0.1)
    await authz.grant("alice", "trade:view", "acme")
    for _ in range(1000):
        await authz.has("alice", "trade:view", "acme")
    await authz.has("bob", "trade:view", "acme")
    assert 50 < sum(r.allowed for r in records) < 150
    assert records[-1].allowed is False


def test_sample_rate_is_validated() -> None:
    with pytest.raises(ConfigError):
        DecisionLog(AuditMode.SAMPLE, sample_rate=1.5)


def test_default_sink_writes_the_audit_logger(caplog: pytest.LogCaptureFixture) -> None:
    from datetime import UTC, datetime

    from tether.authz import Decision, Reason

    log = DecisionLog()
    with caplog.at_level("INFO", logger="tether.authz.audit"):
        log.record(Decision(False, "bob", "trade:view", "acme", Reason.NO_GRANT), datetime.now(UTC))
    assert "authz deny user=bob capability=trade:view org=acme reason=no_grant" in caplog.text
