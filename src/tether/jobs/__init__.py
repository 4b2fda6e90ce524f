"""Background jobs on PostgreSQL: ``@job``, transactional enqueue, workers with heartbeats,
stale-job recovery, retries, timeouts, dead letters and cron schedules (docs/jobs.md).

Built on the work-item engine (:mod:`tether.queue`) and its one lifecycle: a job is a row of
``tether_jobs`` held under a lease that heartbeats keep alive.
"""

from tether.jobs.client import JobCall, Jobs
from tether.jobs.registry import (
    CancelFlag,
    InvalidJobArgumentsError,
    Job,
    JobContext,
    JobRegistry,
    Schedule,
    UnknownJobError,
    job,
    registry,
)
from tether.jobs.runner import JobTimeoutError
from tether.jobs.store import CANCELLED, JOBS, RECOVERED, JobRef, JobStore
from tether.jobs.worker import JobWorker, WorkerStats
from tether.queue.worker import Defer

__all__ = [
    "CANCELLED",
    "JOBS",
    "RECOVERED",
    "CancelFlag",
    "Defer",
    "InvalidJobArgumentsError",
    "Job",
    "JobCall",
    "JobContext",
    "JobRef",
    "JobRegistry",
    "JobStore",
    "JobTimeoutError",
    "JobWorker",
    "Jobs",
    "Schedule",
    "UnknownJobError",
    "WorkerStats",
    "job",
    "registry",
]
