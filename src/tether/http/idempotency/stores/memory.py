"""An in-process idempotency store, for tests and single-process apps."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tether.http.idempotency.records import Begin, Outcome, StoredResponse, new_token


@dataclass(slots=True)
class _Record:
    fingerprint: str
    token: str
    expires_at: float
    response: StoredResponse | None = None


class MemoryIdempotencyStore:
    """Every method runs without awaiting, so one event loop sees each step as atomic."""

    # Expired records are evicted every this many begins, so a long-running process does not
    # keep every key it ever saw; the sweep is amortized to a fraction of a dict walk per call.
    SWEEP_EVERY = 4096

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: dict[str, _Record] = {}
        self._begins = 0

    async def begin(
        self, key: str, fingerprint: str, tenant: str, lease_ttl: float, record_ttl: float
    ) -> Begin:
        self._begins += 1
        if self._begins % self.SWEEP_EVERY == 0:
            self.purge_expired()
        now = self._clock()
        record = self._records.get(key)
        if record is not None and record.expires_at <= now:
            record = None
        if record is None:
            token = new_token()
            self._records[key] = _Record(fingerprint, token, now + lease_ttl)
            return Begin(Outcome.ACQUIRED, token=token)
        if record.fingerprint != fingerprint:
            return Begin(Outcome.MISMATCH)
        if record.response is None:
            return Begin(Outcome.IN_FLIGHT, retry_after=record.expires_at - now)
        return Begin(Outcome.COMPLETED, response=record.response)

    async def complete(
        self, key: str, token: str, response: StoredResponse, record_ttl: float
    ) -> bool:
        record = self._records.get(key)
        if record is None or record.token != token or record.expires_at <= self._clock():
            return False
        record.response = response
        record.expires_at = self._clock() + record_ttl
        return True

    async def release(self, key: str, token: str) -> None:
        record = self._records.get(key)
        if record is not None and record.token == token and record.response is None:
            del self._records[key]

    def purge_expired(self) -> int:
        now = self._clock()
        dead = [k for k, r in self._records.items() if r.expires_at <= now]
        for key in dead:
            del self._records[key]
        return len(dead)
