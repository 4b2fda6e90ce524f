"""The jobs' metrics, defined once per process (no-ops without the ``metrics`` extra)."""

from __future__ import annotations

from tether.ops.instruments import counter

JOBS_FINISHED = counter(
    "tether_jobs_finished_total",
    "Job runs by queue and outcome (done, retry, dead, deferred, timeout, discarded).",
    ["queue", "outcome"],
)
JOBS_RECOVERED = counter(
    "tether_jobs_recovered_total",
    "Jobs recovered from stale state (no worker heartbeat within the threshold), by queue.",
    ["queue"],
)
JOBS_RECOVERY_ALERTS = counter(
    "tether_jobs_recovery_alerts_total",
    "Days on which recovered jobs exceeded the alert threshold (counted once per worker a day).",
)
JOBS_STUCK_THREADS = counter(
    "tether_jobs_stuck_threads_total",
    "Sync jobs that kept running after their timeout (cancellation ignored; slot reclaimed).",
)
