"""Rules, the failure policy, and the check both the middleware and the dependency run."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.types import Scope

from tether.core.errors import ConfigError, StoreError
from tether.http.ratelimit import metrics
from tether.http.ratelimit.algorithms import Algorithm, Decision, Limit, check_policy_name
from tether.http.ratelimit.keys import KeyFunc
from tether.http.ratelimit.stores import RateLimitStore

LimitChooser = Callable[[Scope], Limit | None]


class FailureMode(enum.Enum):
    OPEN = "open"  # store down: admit the request (availability first)
    CLOSED = "closed"  # store down: refuse with 503 (protection first)


@dataclass(frozen=True)
class Rule:
    """Count requests by ``key`` against ``limit`` (a Limit, or chosen per request: per plan).

    ``name`` is the policy name the RateLimit fields advertise (default: the limit's name);
    name rules that may apply the same limit, so a client can tell their policies apart.
    """

    key: KeyFunc
    limit: Limit | LimitChooser
    algorithm: Algorithm = Algorithm.SLIDING_WINDOW
    cost: int = 1
    name: str | None = None

    def __post_init__(self) -> None:
        if self.cost < 1:
            raise ConfigError("a rate-limit rule's cost must be >= 1")
        if self.name is not None:
            check_policy_name(self.name)

    def limit_for(self, scope: Scope) -> Limit | None:
        return self.limit if isinstance(self.limit, Limit) else self.limit(scope)


@dataclass(frozen=True)
class Verdict:
    decisions: tuple[Decision, ...] = ()
    denied: Decision | None = None
    store_failed: bool = False


class RateLimitExceeded(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__("rate limit exceeded")
        self.verdict = verdict


class RateLimitUnavailable(Exception):
    """The store is down and the policy is fail-closed."""


class RateLimiter:
    def __init__(
        self,
        store: RateLimitStore,
        *,
        on_store_error: FailureMode = FailureMode.OPEN,
        timeout: float = 0.5,
        cooldown: float = 1.0,
    ) -> None:
        if timeout <= 0 or cooldown < 0:
            raise ConfigError("the rate-limit timeout must be > 0 and the cooldown >= 0 seconds")
        self.store = store
        self.on_store_error = on_store_error
        self.timeout = timeout
        self.cooldown = cooldown
        # An in-process store cannot hang; skipping the timeout guard saves its cost per call.
        self._guard = not getattr(store, "in_process", False)
        # After a store failure the store is not asked again for ``cooldown`` seconds, so an
        # outage costs each request nothing instead of a connect timeout (a circuit breaker).
        self._skip_until = 0.0

    async def check(self, scope: Scope, rules: Sequence[Rule]) -> Verdict:
        decisions: list[Decision] = []
        if self._skip_until and time.monotonic() < self._skip_until:
            return self._failed(decisions)
        for position, rule in enumerate(rules, 1):
            limit = rule.limit_for(scope)
            key = rule.key(scope) if limit is not None else None
            if limit is None or key is None:
                continue
            try:
                decision = await self._hit(f"{limit.name}:{key}", limit, rule)
            except (StoreError, TimeoutError):
                self._skip_until = time.monotonic() + self.cooldown
                return self._failed(decisions)
            self._skip_until = 0.0
            decision = _named(decision, rule, position, decisions)
            decisions.append(decision)
            if not decision.allowed:
                metrics.REJECTED.labels(limit=limit.name).inc()
                return Verdict(tuple(decisions), decision)
        return Verdict(tuple(decisions))

    async def _hit(self, key: str, limit: Limit, rule: Rule) -> Decision:
        if not self._guard:
            return await self.store.hit(key, limit, rule.algorithm, rule.cost)
        async with asyncio.timeout(self.timeout):
            return await self.store.hit(key, limit, rule.algorithm, rule.cost)

    def _failed(self, decisions: list[Decision]) -> Verdict:
        metrics.STORE_ERRORS.labels(policy=self.on_store_error.value).inc()
        return Verdict(tuple(decisions), None, store_failed=True)

    def refuses(self, verdict: Verdict) -> bool:
        return verdict.denied is not None or (
            verdict.store_failed and self.on_store_error is FailureMode.CLOSED
        )


def _named(decision: Decision, rule: Rule, position: int, earlier: list[Decision]) -> Decision:
    """The decision under the rule's policy name, unique among this request's policies: two
    unnamed rules applying one limit are told apart by the later one's position."""
    name = rule.name or decision.limit.name
    if any(d.policy_name == name for d in earlier):
        name = f"{name}-{position}"
    if name == decision.limit.name:
        return decision
    return dataclasses.replace(decision, policy=name)
