"""Enqueueing jobs: by name or definition, validated, inside the caller's transaction or alone.

Everything that can be refused is refused here, before a row is written: an unknown job name
(the error lists the known ones), arguments that fail validation or cannot be stored as JSON,
a naive ``run_at``, both ``run_at`` and ``delay``, a bad priority or attempt count.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tether.core.errors import ConfigError
from tether.jobs.registry import InvalidJobArgumentsError, Job, JobRegistry, registry
from tether.jobs.store import JobRef, JobStore, NewJob

_MAX_KEY = 500
_PRIORITY = range(-32768, 32768)


@dataclass(frozen=True, slots=True)
class JobCall:
    """One job to enqueue, for :meth:`Jobs.enqueue_many` (options as in :meth:`Jobs.enqueue`)."""

    job: str | Job
    args: Mapping[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    run_at: datetime | None = None
    delay: timedelta | None = None
    max_attempts: int | None = None
    timeout: timedelta | float | None = None
    dedup_key: str | None = None
    id: uuid.UUID | None = None


class Jobs:
    """The producer side: ``await jobs.enqueue("send_receipt", {"order_id": 7}, tx=conn)``."""

    def __init__(self, store: JobStore, registry: JobRegistry = registry) -> None:
        self.store = store
        self.registry = registry

    @classmethod
    async def connect(cls, dsn: str, registry: JobRegistry = registry, **options: Any) -> Jobs:
        return cls(await JobStore.connect(dsn, **options), registry)

    async def close(self) -> None:
        await self.store.close()

    def _job(self, job: str | Job) -> Job:
        if isinstance(job, Job):
            return self.registry.get(job.name)  # the same name must be known to workers too
        if not isinstance(job, str):
            raise InvalidJobArgumentsError(
                f"enqueue takes a job name or a @job function, got {type(job).__name__}"
            )
        return self.registry.get(job)

    def prepare(self, call: JobCall) -> NewJob:
        """Validate one call into a row (raises before anything is written)."""
        job = self._job(call.job)
        payload = job.payload(call.args)
        now = self.store.clock.now()
        run_at = call.run_at
        if run_at is not None:
            if call.delay is not None:
                raise ConfigError("enqueue takes run_at= or delay=, not both")
            if run_at.tzinfo is None:
                raise ConfigError(f"run_at must be timezone-aware, got {run_at!r}")
        elif call.delay is not None:
            if call.delay < timedelta(0):
                raise ConfigError(f"delay must not be negative, got {call.delay}")
            run_at = now + call.delay
        priority = job.priority if call.priority is None else call.priority
        if not isinstance(priority, int) or priority not in _PRIORITY:
            raise ConfigError(f"priority must be an integer from -32768 to 32767, got {priority!r}")
        attempts = job.max_attempts if call.max_attempts is None else call.max_attempts
        if not isinstance(attempts, int) or attempts < 1:
            raise ConfigError(f"max_attempts must be an integer of at least 1, got {attempts!r}")
        timeout = _seconds(call.timeout) if call.timeout is not None else _seconds(job.timeout)
        if call.dedup_key is not None and not (0 < len(call.dedup_key) <= _MAX_KEY):
            raise ConfigError(f"dedup_key must be 1 to {_MAX_KEY} characters")
        queue = call.queue or job.queue
        if len(queue) > 100:
            raise ConfigError("queue names are at most 100 characters")
        return NewJob(
            name=job.name,
            queue=queue,
            payload=payload,
            priority=priority,
            run_at=run_at,
            max_attempts=attempts,
            timeout_s=timeout,
            dedup_key=call.dedup_key,
            id=call.id,
        )

    async def enqueue(
        self,
        job: str | Job,
        args: Mapping[str, Any] | None = None,
        *,
        tx: object = None,
        queue: str | None = None,
        priority: int | None = None,
        run_at: datetime | None = None,
        delay: timedelta | None = None,
        max_attempts: int | None = None,
        timeout: timedelta | float | None = None,
        dedup_key: str | None = None,
        id: uuid.UUID | None = None,
    ) -> JobRef:
        """Enqueue one job; with ``tx`` it exists iff the caller's transaction commits.
        ``dedup_key``: while a job with that key is queued or running, no second one is
        created (the answer's ``created`` is False and ``id`` names the existing job)."""
        call = JobCall(
            job, args or {}, queue, priority, run_at, delay, max_attempts, timeout, dedup_key, id
        )
        return (await self.store.enqueue([self.prepare(call)], tx=tx))[0]

    async def enqueue_many(self, calls: Sequence[JobCall], *, tx: object = None) -> list[JobRef]:
        """Bulk enqueue in one statement; every call is validated before any row is sent."""
        return await self.store.enqueue([self.prepare(c) for c in calls], tx=tx)

    def enqueue_sync(
        self, job: str | Job, args: Mapping[str, Any] | None = None, *, tx: object, **options: Any
    ) -> JobRef:
        """For synchronous code: inside a SQLAlchemy ``Session`` or psycopg ``Connection``
        transaction (options as :meth:`enqueue`)."""
        call = JobCall(job, args or {}, **options)
        return self.store.enqueue_sync([self.prepare(call)], tx=tx)[0]


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not seconds > 0:
        raise ConfigError(f"timeout must be positive, got {value!r}")
    return seconds
