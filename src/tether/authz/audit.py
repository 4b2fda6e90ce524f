"""Optional decision log: who asked for what, in which org, the outcome and the matching grant.

Modes keep the volume in check: ``all``, ``denials`` (only refusals) or ``sample`` (a random
fraction of allowed decisions, every denial). Records go to a sink callable; the default
writes one structured line per decision to the ``tether.authz.audit`` logger.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tether.authz.model import Decision
from tether.core.errors import ConfigError

correlation_id: ContextVar[str | None] = ContextVar("tether_authz_correlation_id", default=None)
_logger = logging.getLogger("tether.authz.audit")


class AuditMode(StrEnum):
    ALL = "all"
    DENIALS = "denials"
    SAMPLE = "sample"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: datetime
    user: str
    capability: str
    org: str | None
    allowed: bool
    reason: str
    grant: str | None
    correlation_id: str | None


def log_sink(record: AuditRecord) -> None:
    _logger.info(
        "authz %s user=%s capability=%s org=%s reason=%s grant=%s correlation_id=%s",
        "allow" if record.allowed else "deny",
        record.user,
        record.capability,
        record.org,
        record.reason,
        record.grant,
        record.correlation_id,
        extra={"authz": record},
    )


class DecisionLog:
    def __init__(
        self,
        mode: AuditMode | str = AuditMode.ALL,
        *,
        sample_rate: float = 0.01,
        sink: Callable[[AuditRecord], None] = log_sink,
        rng: random.Random | None = None,
    ) -> None:
        self.mode = AuditMode(mode)
        if not 0.0 <= sample_rate <= 1.0:
            raise ConfigError(f"audit sample_rate must be within 0..1, got {sample_rate}")
        self.sample_rate = sample_rate
        self.sink = sink
        self._rng = rng or random.Random()

    def wants(self, allowed: bool) -> bool:
        """Whether a decision with this outcome is to be recorded (cheap; checked first)."""
        if not allowed or self.mode is AuditMode.ALL:
            return True
        if self.mode is AuditMode.DENIALS:
            return False
        return self._rng.random() < self.sample_rate

    def record(self, decision: Decision, at: datetime) -> None:
        grant = decision.grant.describe() if decision.grant else None
        self.sink(
            AuditRecord(
                at,
                decision.user,
                decision.capability,
                decision.org,
                decision.allowed,
                decision.reason.value,
                grant,
                correlation_id.get(),
            )
        )
