"""The runner registry: every relay, job worker, webhook dispatcher, real-time gateway and
consumer registers when it starts, beats with its counters every few seconds, and marks itself
stopped when it exits cleanly, so operators see who runs (idle ones too), who died and when,
and each kind's throughput over time (docs/operations.md, "Runner registry").

:class:`PostgresRunnerRegistry` is shared by every process of a deployment;
:class:`MemoryRunnerRegistry` holds one process's runners (tests, SQLite deployments).
:class:`Heartbeat` is what a runner wraps its loop in.
"""

from __future__ import annotations

from tether.ops.runners.errors import UnknownRunner
from tether.ops.runners.heartbeat import Heartbeat, maybe_heartbeat
from tether.ops.runners.memory import MemoryRunnerRegistry
from tether.ops.runners.model import (
    ALIVE_INTERVALS,
    KEEP_HISTORY,
    KEEP_RUNNERS,
    LATE_INTERVALS,
    RUNNER_KINDS,
    HistoryPoint,
    RunnerInfo,
    RunnerKind,
    RunnerRegistry,
    RunnerStatus,
    default_name,
)
from tether.ops.runners.postgres import PostgresRunnerRegistry

__all__ = [
    "ALIVE_INTERVALS",
    "KEEP_HISTORY",
    "KEEP_RUNNERS",
    "LATE_INTERVALS",
    "RUNNER_KINDS",
    "Heartbeat",
    "HistoryPoint",
    "MemoryRunnerRegistry",
    "PostgresRunnerRegistry",
    "RunnerInfo",
    "RunnerKind",
    "RunnerRegistry",
    "RunnerStatus",
    "UnknownRunner",
    "default_name",
    "maybe_heartbeat",
]
