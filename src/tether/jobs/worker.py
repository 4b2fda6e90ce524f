"""The job worker: claim per queue, run, heartbeat, recover stale jobs, fire cron ticks.

One asyncio task per queue keeps up to that queue's concurrency of jobs running, claiming as
many as there are free slots in one statement. Completions of plain jobs are written in
batches (one statement for every job that finished in the same loop turn); a transactional
job completes inside its own transaction. One heartbeat statement every few seconds pushes
the lease of every running job forward; a job missing from its answer was recovered or
cancelled elsewhere, and its run is abandoned (cancelled, its result discarded).

Shutdown (``stop`` set, e.g. on SIGTERM): no new claims; running jobs get ``grace`` to
finish; the rest are cancelled and released with no attempt spent (``defer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pydantic

from tether.core.errors import ConfigError, LeaseLostError, StoreError, TetherError
from tether.jobs.alerts import RecoveryAlerts
from tether.jobs.client import Jobs
from tether.jobs.held import heartbeat_period
from tether.jobs.metrics import JOBS_FINISHED, JOBS_RECOVERED, JOBS_RECOVERY_ALERTS
from tether.jobs.registry import DEFAULT_MAX_ATTEMPTS, Job, JobContext, result_json
from tether.jobs.runner import JobTimeoutError, Runner
from tether.jobs.schedules import Scheduler
from tether.jobs.store import ClaimedRow, JobStore, Recovered
from tether.ops.alerts import AlertChannel
from tether.ops.alerts_state import AlertState, PostgresAlertState
from tether.ops.runners import RunnerRegistry, maybe_heartbeat
from tether.queue import Claimed
from tether.queue.codec import json_value
from tether.queue.postgres import _uuid
from tether.queue.postgres import _wrapped as wrapped
from tether.queue.worker import Defer, default_worker_name
from tether.tenancy import tenant_scope

log = logging.getLogger("tether.jobs.worker")

ALERT_RETRY_S = 60.0  # a channel that failed is tried again this much later
SPLIT_MIN = 50  # the fewest finished jobs a statement takes before the rest go to the other lane

AlertHook = Callable[[date, int], Awaitable[None]]


class _Run:
    """One claimed job in this worker, from its claim to its recorded outcome."""

    __slots__ = ("_claimed", "claim", "ctx", "finishing", "job", "lost", "seq", "slot",
                 "stopping", "task")  # fmt: skip

    def __init__(self, claim: ClaimedRow, job: Job | None, ctx: JobContext) -> None:
        self.claim = claim
        self.seq: int = claim.row["seq"]
        self.job = job
        self.ctx = ctx
        self.task: asyncio.Task[None] | None = None
        self.lost = False  # the heartbeat found the lease gone: recovered or cancelled elsewhere
        self.stopping = False  # shutdown ran past the grace period: release without an attempt
        self.finishing = False  # the outcome is being written; too late to abandon
        self.slot = False  # counts toward its queue's concurrency
        self._claimed: Claimed | None = None

    @property
    def token(self) -> uuid.UUID:
        return self.claim.lease_token

    async def claimed(self, store: JobStore) -> Claimed:
        """The engine's view of the claim, for its lease-checked transitions (fail, defer,
        dead letter, release): read on first use, since a job that succeeds needs none.
        Raises ``LeaseLostError`` when the lease is gone."""
        if self._claimed is None:
            self._claimed = await store.held(self.claim)
        return self._claimed


@dataclass
class WorkerStats:
    completed: int = 0
    failed: int = 0
    dead: int = 0
    timed_out: int = 0
    deferred: int = 0
    discarded: int = 0
    released: int = 0
    recovered: int = 0
    by_queue: dict[str, int] = field(default_factory=dict)


class _Lanes:
    """A few pooled connections kept for the worker's claim and settle statements. Going
    through the pool per statement costs a second round trip each time (asyncpg resets a
    connection on release). Two lanes let one statement be written while the other runs, so
    neither Python nor PostgreSQL waits on the other."""

    def __init__(self, pool: Any, size: int = 2) -> None:
        self._pool = pool
        self._size = size
        self._free: asyncio.Queue[Any] = asyncio.Queue()
        for _ in range(size):
            self._free.put_nowait(None)  # None: connect on first use

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[Any]:
        conn = await self._free.get()
        try:
            if conn is None or conn.is_closed():
                async with wrapped("connect"):
                    conn = await self._pool.acquire()
            yield conn
        except BaseException:
            # A failed or interrupted statement may leave the connection unusable: hand
            # it back (the pool resets or discards it) and take a fresh one next time.
            if conn is not None:
                with contextlib.suppress(Exception):
                    await self._pool.release(conn)
            conn = None
            raise
        finally:
            self._free.put_nowait(conn)

    async def warm(self) -> None:
        """Connect every lane now, in parallel: otherwise the second lane connects in the
        middle of the worker's first batch, which then waits for it. A failure is left for
        first use to meet (and report) again."""
        conns = [self._free.get_nowait() for _ in range(self._free.qsize())]

        async def ready(conn: Any) -> Any:
            if conn is not None and not conn.is_closed():
                return conn
            async with wrapped("connect"):
                return await self._pool.acquire()

        for got in await asyncio.gather(*(ready(c) for c in conns), return_exceptions=True):
            self._free.put_nowait(None if isinstance(got, BaseException) else got)

    async def close(self) -> None:
        """Give the connections back (called when no statement runs)."""
        while not self._free.empty():
            conn = self._free.get_nowait()
            if conn is not None:
                await self._pool.release(conn)
        for _ in range(self._size):
            self._free.put_nowait(None)


class _Completions:
    """Coalesces completions that arrive in the same loop turn into one statement per queue,
    which also claims that queue's next jobs (``JobWorker._settle``): one round trip per turn
    instead of a completion and a claim. Up to ``IN_FLIGHT`` such statements run at once
    (one per lane), so the next batch is written while the previous one runs."""

    IN_FLIGHT = 2

    def __init__(self, worker: JobWorker) -> None:
        self._worker = worker
        self._pending: list[tuple[_Run, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._collecting = False  # a flush task will take the pending batch

    def submit(self, run: _Run, result: Any) -> None:
        """Record ``run``'s success with the next statement. The run stays held (and
        heartbeated) until then; ``JobWorker._settle`` counts it, or reports it discarded
        when its lease was lost. Nothing waits per job: a future per job cost a wake-up."""
        self._pending.append((run, result))
        self._collect()

    def _collect(self) -> None:
        """Start a flush task unless one is collecting already or every lane is busy."""
        if not self._collecting and len(self._tasks) < self.IN_FLIGHT:
            self._collecting = True
            task = asyncio.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the completions of this turn join the batch
        while self._pending:
            self._collecting = False
            # At most half a queue's depth per statement, the rest at once on the other lane:
            # short jobs all finish in the same turn, and one statement for all of them would
            # leave the worker idle while it runs (nothing else is held) and PostgreSQL idle
            # while the next batch runs. Two halves keep both busy.
            cap = self._worker._settle_cap
            batch, self._pending = self._pending[:cap], self._pending[cap:]
            if self._pending:
                self._collect()
            by_queue: dict[str, list[tuple[_Run, Any]]] = {}
            for entry in batch:
                by_queue.setdefault(entry[0].ctx.queue, []).append(entry)
            for queue, entries in by_queue.items():
                await self._worker._settle(queue, entries)
                freed = self._worker._freed.get(queue)
                if freed is not None:
                    freed.set()  # the serve loop looks again (it waits while we write)
            if self._collecting:
                break  # another flush task takes what arrived meanwhile

    @property
    def busy(self) -> bool:
        """Completions are waiting or being written (and their statement will claim)."""
        return bool(self._pending) or bool(self._tasks)

    async def close(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class JobWorker:
    """Runs the jobs of ``queues`` (name → concurrency; default: every registered job's queue
    at ``concurrency``). Embeddable: ``await worker.run(stop_event)``; ``tether worker`` is
    this plus signal handling."""

    def __init__(
        self,
        jobs: Jobs,
        *,
        queues: Mapping[str, int] | Sequence[str] | None = None,
        concurrency: int = 10,
        name: str | None = None,
        stale_after: timedelta = timedelta(minutes=10),
        heartbeat_every: timedelta | None = None,
        grace: timedelta = timedelta(seconds=30),
        poll_interval: float = 0.5,
        recover_every: timedelta = timedelta(seconds=1),
        recovery_alert_threshold: int = 5,
        on_recovery_alert: AlertHook | None = None,
        alert_channels: Sequence[AlertChannel] = (),
        alert_state: AlertState | None = None,
        keep_results: bool = True,
        schedules: bool = True,
        prefetch: int | None = None,
        registry: RunnerRegistry | None = None,
        registry_interval_s: float = 10.0,
    ) -> None:
        """``registry``: :meth:`run` registers the worker there as ``name`` and beats its
        counters every ``registry_interval_s`` seconds (not to be confused with
        ``heartbeat_every``, which extends the leases of the jobs it runs)."""
        self.jobs = jobs
        self.registry = registry
        self.registry_interval_s = registry_interval_s
        self.queues = self._queues(jobs, queues, concurrency)
        if stale_after <= timedelta(0) or grace < timedelta(0) or poll_interval <= 0:
            raise ConfigError("stale_after and poll_interval must be positive, grace not negative")
        self.stale_after = stale_after
        # Claimed ahead per queue (default: as many as it runs at once); 0 claims per free slot.
        self.prefetch = prefetch if prefetch is not None else max(self.queues.values())
        if self.prefetch < 0:
            raise ConfigError(f"prefetch must not be negative, got {prefetch}")
        # timedelta(0) asks for the default too, as None does.
        self.heartbeat_every = heartbeat_period(
            stale_after, heartbeat_every or None, lease_name="stale_after"
        )
        self.name = name or default_worker_name()
        self.grace = grace
        self.poll_interval = poll_interval
        self.recover_every = recover_every
        self.alert_threshold = recovery_alert_threshold
        self.on_recovery_alert = on_recovery_alert
        # The dead-letter monitor's channels; their once-a-day state is shared by all workers.
        self.recovery_alerts = (
            RecoveryAlerts(alert_channels, alert_state or PostgresAlertState(jobs.store.pool))
            if alert_channels
            else None
        )
        self._channels_due: date | None = None  # a day whose channel alert is not sent yet
        self._channels_retry_at = 0.0
        self.stats = WorkerStats()
        self.runner = Runner()
        self.scheduler = Scheduler(jobs) if schedules else None
        self.keep_results = keep_results
        self._completions = _Completions(self)
        # Finished jobs recorded (and jobs claimed) per statement: half a queue's depth, so
        # both lanes work (see _Completions._flush), but never fewer than SPLIT_MIN: a small
        # batch split in two costs a statement more and gains nothing measurable.
        depth = max(self.queues.values()) + self.prefetch
        self._settle_cap = max(SPLIT_MIN, depth // _Completions.IN_FLIGHT)
        self._lane = _Lanes(jobs.store.pool)
        self._claiming = {q: 0 for q in self.queues}  # rows being claimed right now
        self._serving = False  # run() keeps queues topped up; run_once() claims only once
        self._held: dict[int, _Run] = {}  # claimed by this worker: running or buffered
        self._buffer: dict[str, deque[_Run]] = {q: deque() for q in self.queues}
        self._active: dict[str, int] = {}
        self._done_children: dict[str, Any] = {}
        self._spare: list[Any] = []  # connections kept between transactional jobs
        self._freed = {q: asyncio.Event() for q in self.queues}
        self._stopping = asyncio.Event()
        self._alerted: date | None = None
        self.idle = asyncio.Event()  # set while no queue found work on its last claim

    @staticmethod
    def _queues(
        jobs: Jobs, queues: Mapping[str, int] | Sequence[str] | None, concurrency: int
    ) -> dict[str, int]:
        handoff = jobs.registry.handoff_queues()
        if queues is None:
            names = sorted({j.queue for j in jobs.registry} - handoff) or ["default"]
            chosen = {q: concurrency for q in names}
        elif isinstance(queues, Mapping):
            chosen = dict(queues)
        else:
            chosen = {q: concurrency for q in queues}
        if not chosen:
            raise ConfigError("a worker needs at least one queue")
        for queue in sorted(handoff & set(chosen)):
            raise ConfigError(
                f"queue {queue!r} holds hand-off jobs: `tether jobs handoff --queue {queue}` "
                "serves it, not a worker"
            )
        for queue, n in chosen.items():
            if not isinstance(n, int) or n < 1:
                raise ConfigError(f"queue {queue}: concurrency must be at least 1, got {n!r}")
        return chosen

    def wake(self) -> None:
        """Look for jobs now rather than at the next poll."""
        for freed in self._freed.values():
            freed.set()

    # -- one job -------------------------------------------------------------------------
    def _start(self, claim: ClaimedRow) -> _Run:
        row = claim.row
        name = row["name"]
        job = self.jobs.registry._jobs.get(name)
        ctx = JobContext(
            id=_uuid(row["id"]),
            name=name,
            queue=row["queue"],
            attempt=row["attempts"],
            max_attempts=row["max_attempts"] or DEFAULT_MAX_ATTEMPTS,
            tenant=row["tenant_id"],
        )
        run = _Run(claim, job, ctx)
        self._held[run.seq] = run
        return run

    def _launch(self, run: _Run) -> None:
        self._active[run.ctx.queue] = self._active.get(run.ctx.queue, 0) + 1
        run.slot = True
        # Unnamed: formatting "job <id>" per task cost ~0.7 us, 5% of a short job's CPU here.
        run.task = asyncio.create_task(self._execute(run))

    def _fill(self, queue: str, limit: int) -> None:
        """Start buffered jobs while the queue has free slots."""
        buffer = self._buffer[queue]
        while buffer and self._active.get(queue, 0) < limit:
            run = buffer.popleft()
            if self._held.get(run.seq) is run:  # not lost while it waited
                self._launch(run)

    async def _execute(self, run: _Run) -> None:
        queue = run.ctx.queue
        handed = False  # to the completions, which let go of the run once it is recorded
        try:
            handed = await self._attempt(run)
        except asyncio.CancelledError:
            if run.stopping:
                await self._release(run)
            elif run.lost:
                self._discarded(run, "its lease was lost while it ran")
            else:
                raise
        finally:
            if not handed:
                self._held.pop(run.seq, None)
            self._free_slot(run)
            self.stats.by_queue[queue] = self.stats.by_queue.get(queue, 0) + 1

    def _free_slot(self, run: _Run) -> None:
        if run.slot:
            run.slot = False
            self._active[run.ctx.queue] -= 1
            freed = self._freed.get(run.ctx.queue)
            if freed is not None:
                freed.set()

    async def _attempt(self, run: _Run) -> bool:
        """Run the job and record its outcome; True when its success was handed to the
        completions (recorded with the next statement)."""
        job, row = run.job, run.claim.row
        if job is None:
            known = ", ".join(self.jobs.registry.names) or "none"
            await self._outcome(run, "fail", f"this worker does not know job {run.ctx.name!r} "
                                f"(known: {known}); deploy its code to the workers")  # fmt: skip
            return False
        try:
            kwargs = job.kwargs(json_value(row["payload"]))
        except pydantic.ValidationError as exc:
            await self._outcome(run, "dead", f"stored arguments no longer validate: {exc}")
            return False
        timeout = row["timeout_s"]
        limit = None if timeout is None else float(timeout)
        try:
            if job.transactional:
                await self._transactional(run, job, kwargs, limit)
                return False
            result = await self.runner.call(job, kwargs, run.ctx, limit)
        except Defer as later:
            await self._defer(run, later)
            return False
        except JobTimeoutError as exc:
            self.stats.timed_out += 1
            JOBS_FINISHED.labels(run.ctx.queue, "timeout").inc()
            await self._outcome(run, "fail", f"JobTimeoutError: {exc}")
            return False
        except LeaseLostError:
            self._discarded(run, "its lease was lost; its transaction rolled back")
            return False
        except Exception as exc:  # the job's failure is the job's, not the worker's
            await self._outcome(run, "fail", f"{type(exc).__name__}: {exc}")
            return False
        run.finishing = True
        # The job has run: its slot goes to the next job while the completion is written
        # (with the next claim, in one statement), so jobs run during the round trip.
        self._free_slot(run)
        # Rows deleted when done (keep_results=False) keep no result: none to convert.
        self._completions.submit(run, result_json(result) if self.keep_results else None)
        return True

    async def _transactional(
        self, run: _Run, job: Job, kwargs: dict[str, Any], limit: float | None
    ) -> None:
        """The job's effects (through ``ctx.tx``) and its completion in one transaction.

        The connection is kept for the next transactional job rather than returned to the
        pool, whose reset on release costs a round trip per job (a fifth of the job's)."""
        pool = self.jobs.store.pool
        conn = self._spare.pop() if self._spare else await pool.acquire()
        clean = False
        try:
            async with conn.transaction():
                if run.ctx.tenant is not None:
                    # The job's writes belong to the tenant that enqueued it: tether_tenant()
                    # defaults, add_event's scope check and policies of a role it switches to.
                    await tenant_scope(conn, run.ctx.tenant)
                run.ctx.tx = conn
                try:
                    result = await self.runner.call(job, kwargs, run.ctx, limit)
                    run.finishing = True
                    await self.jobs.store.complete_claim(run.claim, result_json(result), conn=conn)
                finally:
                    run.ctx.tx = None
            clean = True
        finally:
            if clean and not conn.is_closed() and not conn.is_in_transaction():
                self._spare.append(conn)
            else:
                await pool.release(conn)
        self.stats.completed += 1
        self._done_metric(run.ctx.queue).inc()

    def _done_metric(self, queue: str) -> Any:
        # The labelled child once per queue: labels() costs more than the increment.
        child = self._done_children.get(queue)
        if child is None:
            child = self._done_children[queue] = JOBS_FINISHED.labels(queue, "done")
        return child

    def _discarded(self, run: _Run, why: str) -> None:
        self.stats.discarded += 1
        JOBS_FINISHED.labels(run.ctx.queue, "discarded").inc()
        log.warning(
            "job %s (%s, attempt %d): late result discarded: %s",
            run.ctx.id, run.ctx.name, run.ctx.attempt, why,
        )  # fmt: skip

    async def _outcome(self, run: _Run, kind: str, error: str) -> None:
        run.finishing = True
        store = self.jobs.store
        policy = run.job.retry if run.job is not None else None
        try:
            c = await run.claimed(store)
            if kind == "dead":
                await store.engine.dead_letter(c, error)
                state = "dead"
            else:
                state = (await store.engine.fail(c, error, policy=policy)).value
        except LeaseLostError:
            self._discarded(run, f"it failed ({error}) after its lease was lost")
            return
        except StoreError as exc:
            log.warning("could not record the failure of job %s: %s", run.ctx.id, exc)
            return
        if state == "dead":
            self.stats.dead += 1
            JOBS_FINISHED.labels(run.ctx.queue, "dead").inc()
            log.error("job %s (%s) is dead after attempt %d: %s", run.ctx.id, run.ctx.name,
                      run.ctx.attempt, error)  # fmt: skip
        else:
            self.stats.failed += 1
            JOBS_FINISHED.labels(run.ctx.queue, "retry").inc()
            log.info("job %s (%s) failed, will retry: %s", run.ctx.id, run.ctx.name, error)

    async def _defer(self, run: _Run, later: Defer) -> None:
        run.finishing = True
        try:
            await self.jobs.store.engine.defer(
                await run.claimed(self.jobs.store),
                until=later.until,
                delay=later.delay,
                reason=later.reason,
            )
        except ConfigError as exc:
            await self._outcome(run, "fail", f"the job raised an invalid Defer: {exc}")
            return
        except (LeaseLostError, StoreError) as exc:
            log.warning("could not defer job %s: %s", run.ctx.id, exc)
            return
        self.stats.deferred += 1
        JOBS_FINISHED.labels(run.ctx.queue, "deferred").inc()

    async def _release(self, run: _Run) -> None:
        """Shutdown: give the job back at once with the attempt its claim counted."""
        try:
            await self.jobs.store.engine.defer(
                await run.claimed(self.jobs.store),
                delay=timedelta(0),
                reason="released: its worker shut down",
            )
        except (LeaseLostError, StoreError) as exc:
            log.warning("could not release job %s at shutdown: %s", run.ctx.id, exc)
            return
        self.stats.released += 1
        log.info("job %s (%s) released at shutdown, no attempt spent", run.ctx.id,
                 run.ctx.name)  # fmt: skip

    # -- loops ---------------------------------------------------------------------------
    def _want(self, queue: str) -> int:
        """How many more jobs ``queue`` can hold (running + claimed ahead)."""
        if not self._serving or self._stopping.is_set() or queue not in self.queues:
            return 0
        depth = self.queues[queue] + self.prefetch
        held = self._active.get(queue, 0) + len(self._buffer[queue])
        return max(0, depth - held - self._claiming[queue])

    async def _settle(self, queue: str, entries: Sequence[tuple[_Run, Any]]) -> None:
        """Record finished jobs and claim the queue's next ones in one statement."""
        want = min(self._want(queue), self._settle_cap)  # a half each, so both lanes claim
        if want < max(1, self.prefetch // 2):
            want = 0  # too few to be worth it; the serve loop claims when enough are free
        self._claiming[queue] = self._claiming.get(queue, 0) + want
        try:
            async with self._lane.use() as conn:
                done, batch = await self.jobs.store.settle_and_claim_rows(
                    [run.seq for run, _ in entries], [run.token for run, _ in entries],
                    [result for _, result in entries] if self.keep_results else None,
                    queue=queue, limit=want, lease=self.stale_after, worker=self.name, conn=conn,
                )  # fmt: skip
        except Exception as exc:
            for run, _ in entries:
                self._let_go(run)
                log.warning("could not record the completion of job %s: %s", run.ctx.id, exc)
            return
        finally:
            self._claiming[queue] -= want
        await self._take(batch)
        recorded = 0
        for run, _ in entries:
            self._let_go(run)
            if run.seq in done:
                recorded += 1
            else:
                self._discarded(run, "it was recovered or cancelled while it ran")
        if recorded:
            self.stats.completed += recorded
            self._done_metric(queue).inc(recorded)  # once per batch: a metric costs a lock

    def _let_go(self, run: _Run) -> None:
        if self._held.get(run.seq) is run:
            del self._held[run.seq]

    async def _take(self, batch: Sequence[ClaimedRow]) -> None:
        """Buffer jobs claimed with a completion; give them back at once if shutdown began
        while the statement ran (the shutdown has already emptied the buffers)."""
        runs = [self._start(claim) for claim in batch]
        if not self._stopping.is_set():
            for run in runs:
                self._buffer[run.ctx.queue].append(run)
            if runs:
                self._freed[runs[0].ctx.queue].set()
            return
        for run in runs:
            self._held.pop(run.seq, None)
        await asyncio.gather(*(self._release(r) for r in runs))

    async def _claim(self, queue: str, limit: int, *, launch: bool) -> int:
        self._claiming[queue] = self._claiming.get(queue, 0) + limit
        try:
            async with self._lane.use() as conn:
                _, batch = await self.jobs.store.settle_and_claim_rows(
                    (), (), () if self.keep_results else None, queue=queue, limit=limit,
                    lease=self.stale_after, worker=self.name, conn=conn,
                )  # fmt: skip
        except StoreError as exc:
            log.warning("worker %s: claim on %s failed, retrying: %s", self.name, queue, exc)
            return -1
        finally:
            self._claiming[queue] -= limit
        for claim in batch:
            run = self._start(claim)
            if launch:
                self._launch(run)
            else:
                self._buffer[run.ctx.queue].append(run)
        return len(batch)

    async def _serve(self, queue: str, limit: int) -> None:
        """Keep ``limit`` jobs running, with up to ``prefetch`` more claimed ahead (held under
        lease and heartbeated like running ones): claims happen in batches while jobs run,
        instead of one round trip per finished job."""
        freed, buffer = self._freed[queue], self._buffer[queue]
        threshold = max(1, self.prefetch // 2)
        while not self._stopping.is_set():
            freed.clear()
            self._fill(queue, limit)
            active = self._active.get(queue, 0)
            # While completions are being written, their statement claims for the queue.
            busy = self._completions.busy
            want = 0 if busy else self._want(queue)
            got = 0
            if want >= threshold:
                got = await self._claim(queue, want, launch=False)
                if got > 0:
                    continue
            if got == 0 and active == 0 and not buffer and not busy:
                self.idle.set()
            else:
                self.idle.clear()
            # One event says "look again" (a slot freed, jobs claimed, wake(), stop): waiting
            # on it alone costs no task per turn, unlike waiting on several.
            try:
                async with asyncio.timeout(
                    self.poll_interval if got >= 0 else max(self.poll_interval, 1)
                ):
                    await freed.wait()
            except TimeoutError:
                pass

    async def _heartbeats(self) -> None:
        every = self.heartbeat_every.total_seconds()
        while True:
            await asyncio.sleep(every)
            await self.heartbeat_once()

    async def heartbeat_once(self) -> None:
        runs = list(self._held.values())
        try:
            alive = await self.jobs.store.heartbeat_leases(
                [r.seq for r in runs], [r.token for r in runs], self.stale_after
            )
        except StoreError as exc:
            log.warning("worker %s: heartbeat failed (jobs may be recovered): %s", self.name, exc)
            return
        for run in runs:
            seq = run.seq
            if seq in alive or run.finishing or self._held.get(seq) is not run:
                continue
            if run.task is None:  # still buffered: just forget it
                del self._held[seq]
                continue
            run.lost = True
            run.ctx.cancelled.set()
            log.warning("job %s (%s): lease lost (recovered or cancelled elsewhere); abandoning "
                        "the run", run.ctx.id, run.ctx.name)  # fmt: skip
            if run.task is not None:
                run.task.cancel()

    async def _recoveries(self) -> None:
        every = self.recover_every.total_seconds()
        while True:
            await self.recover_once()
            await asyncio.sleep(every)

    async def recover_once(self) -> list[Recovered]:
        """Requeue every stale job (any queue) now; log each one, count it, alert past the
        day's threshold."""
        try:
            rescued = await self.jobs.store.recover()
        except StoreError as exc:
            log.warning("worker %s: stale-job recovery failed, retrying: %s", self.name, exc)
            return []
        for r in rescued:
            self.stats.recovered += 1
            JOBS_RECOVERED.labels(r.queue).inc()
            log.warning(
                "job %s (%s, queue %s) recovered from stale state (no heartbeat from worker "
                "%s within %s)%s", r.id, r.name, r.queue, r.worker, self.stale_after,
                ": out of attempts, dead" if r.dead else ": requeued",
            )  # fmt: skip
        failed_before = self._channels_due
        if rescued:
            await self._check_alert()
        if failed_before is not None and self._channels_due is not None:
            await self._send_channels(self._channels_due)  # a channel failed: retry when due
        return rescued

    async def _check_alert(self) -> None:
        today = self.jobs.store.clock.now().date()
        if self._alerted == today:
            return
        try:
            count = await self.jobs.store.recovered_on(today)
        except StoreError as exc:
            log.warning("worker %s: could not read today's recoveries: %s", self.name, exc)
            return
        if count <= self.alert_threshold:
            return
        self._alerted = today
        JOBS_RECOVERY_ALERTS.inc()
        log.error(
            "ALERT: %d jobs recovered from stale state today (%s), above the threshold of %d: "
            "workers are dying or hanging", count, today, self.alert_threshold,
        )  # fmt: skip
        if self.on_recovery_alert is not None:
            try:
                await self.on_recovery_alert(today, count)
            except Exception:
                log.exception("the recovery alert hook failed")
        if self.recovery_alerts is not None:
            self._channels_due = today
            await self._send_channels(today, count)

    async def _send_channels(self, day: date, count: int | None = None) -> None:
        """The channels' alert for ``day``; a failed send is tried again a minute later."""
        assert self.recovery_alerts is not None
        loop = asyncio.get_running_loop()
        if count is None:  # a retry
            if loop.time() < self._channels_retry_at:
                return
            if day != self.jobs.store.clock.now().date():
                self._channels_due = None  # a new day: its own count decides
                return
            try:
                count = await self.jobs.store.recovered_on(day)
            except StoreError:
                self._channels_retry_at = loop.time() + ALERT_RETRY_S
                return
        try:
            delivered = await self.recovery_alerts.send(day, count, self.alert_threshold)
        except Exception as exc:  # the state store: an alert must never stop the recoveries
            log.warning("recovered-jobs alert: %s: %s (tried again later)", type(exc).__name__, exc)
            delivered = False
        if delivered:
            self._channels_due = None
        else:
            self._channels_retry_at = loop.time() + ALERT_RETRY_S

    # -- running ---------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Claim once per queue, run those jobs to the end; returns how many (for tests)."""
        started = 0
        for queue, limit in self.queues.items():
            free = limit - self._active.get(queue, 0)
            if free > 0:
                started += max(await self._claim(queue, free, launch=True), 0)
        await self.drain()
        return started

    async def drain(self) -> None:
        """Wait for every running job to finish."""
        while True:
            tasks = [r.task for r in self._held.values() if r.task and not r.task.done()]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            elif self._completions.busy:  # finished runs stay held until recorded
                await self._completions.close()
            else:
                break
        await self._release_spare()

    async def _release_spare(self) -> None:
        await self._lane.close()
        spare, self._spare = self._spare, []
        for conn in spare:
            await self.jobs.store.pool.release(conn)

    def runner_stats(self) -> dict[str, float]:
        """What the worker reports to the runner registry at each beat."""
        s = self.stats
        return {
            "done_total": s.completed,
            "failed_total": s.failed,
            "dead_total": s.dead,
            "rescued_total": s.recovered,
            "in_flight": sum(self._active.values()),
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then shut down gracefully (see the module doc)."""
        async with maybe_heartbeat(
            self.registry,
            "job-worker",
            self.name,
            interval_s=self.registry_interval_s,
            stats=self.runner_stats,
        ):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        self._stopping.clear()
        self._serving = True
        background = [
            asyncio.create_task(self._heartbeats()),
            asyncio.create_task(self._recoveries()),
        ]
        if self.scheduler is not None and self.jobs.registry.schedules:
            background.append(asyncio.create_task(self.scheduler.run(self.jobs.registry.schedules)))
        await self._lane.warm()
        serving = [asyncio.create_task(self._serve(q, n)) for q, n in self.queues.items()]
        log.info("worker %s: serving %s", self.name, self.queues)
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([stopped, *serving], return_when=asyncio.FIRST_COMPLETED)
            for task in serving:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            stopped.cancel()
            self._stopping.set()
            self.wake()  # the serve loops see the stop at once
            self._serving = False
            await asyncio.gather(*serving, return_exceptions=True)
            await self._shutdown()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._release_spare()

    async def _shutdown(self) -> None:
        for buffer in self._buffer.values():  # claimed ahead, never started: give back now
            waiting = [r for r in buffer if self._held.get(r.seq) is r]
            buffer.clear()
            for run in waiting:
                self._held.pop(run.seq, None)
            await asyncio.gather(*(self._release(r) for r in waiting))
        running = [r.task for r in self._held.values() if r.task is not None]
        if running:
            log.info("worker %s: waiting up to %s for %d running jobs", self.name, self.grace,
                     len(running))  # fmt: skip
            await asyncio.wait(running, timeout=self.grace.total_seconds())
        late = [r for r in self._held.values() if r.task is not None and not r.task.done()]
        for run in late:
            run.stopping = True
            run.ctx.cancelled.set()
            if run.task is not None:
                run.task.cancel()
        await asyncio.gather(*(r.task for r in late if r.task is not None), return_exceptions=True)
        await self._completions.close()


__all__ = ["JobWorker", "TetherError", "WorkerStats"]
