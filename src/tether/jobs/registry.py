"""Job definitions: ``@job`` turns a function into a named, typed job kept in a registry.

The arguments are checked with a pydantic model built from the function's signature, once at
enqueue (so bad or unserializable arguments fail before the caller's transaction commits) and
again when the job runs (so a ``datetime`` argument arrives as a ``datetime``). A parameter
annotated :class:`JobContext` is not an argument: the worker passes the running job's context.
"""

from __future__ import annotations

import inspect
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, get_type_hints

import pydantic
from pydantic_core import PydanticSerializationError, to_jsonable_python

from tether.core.backoff import RetryPolicy
from tether.core.errors import ConfigError, TetherError

DEFAULT_QUEUE = "default"
DEFAULT_MAX_ATTEMPTS = 5


class UnknownJobError(TetherError, LookupError):
    """A job name that no ``@job`` registered."""


class InvalidJobArgumentsError(TetherError, ValueError):
    """Job arguments failed validation or cannot be stored as JSON; nothing was written."""


class CancelFlag:
    """Set when a running job should stop; ``wait(timeout)`` blocks a sync job's thread.

    Like ``threading.Event``, whose lock is made only when a thread waits: most jobs never
    look at it, and a worker creates one per job."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._event: threading.Event | None = None
        self._set = False

    def set(self) -> None:
        self._set = True
        if self._event is not None:
            self._event.set()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        if self._event is None:
            self._event = threading.Event()  # published before _set is read again below
        if self._set:
            self._event.set()
        return self._event.wait(timeout)


@dataclass(slots=True)
class JobContext:
    """What a running job may know about itself. ``tx`` is the asyncpg connection of the job's
    own transaction (``@job(transactional=True)``): write the job's effects there and they
    commit together with its completion, or not at all. ``cancelled`` is set when the job ran
    past its timeout or lost its lease; a sync job should check it and return. ``tenant`` is
    the tenant of the transaction that enqueued the job (None: enqueued unscoped); ``tx`` is
    scoped to it (docs/tenancy.md)."""

    id: uuid.UUID
    name: str
    queue: str
    attempt: int
    max_attempts: int
    tenant: str | None = None
    tx: Any = None
    cancelled: CancelFlag = field(default_factory=CancelFlag)


@dataclass(frozen=True, slots=True)
class Job:
    """A registered job. Call it like the function (it runs inline); enqueue it through
    :class:`tether.jobs.Jobs`."""

    name: str
    fn: Callable[..., Any]
    model: type[pydantic.BaseModel]
    queue: str
    priority: int
    max_attempts: int
    retry: RetryPolicy
    timeout: timedelta | None
    transactional: bool
    context_param: str | None
    is_async: bool
    handoff: bool = False
    """Handed to a broker by ``tether jobs handoff``, never run by a worker: its queue is a
    hand-off queue (docs/jobs.md, "Broker hand-off")."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def payload(self, args: Mapping[str, Any]) -> Any:
        """Validated arguments as JSON-ready data; raises :class:`InvalidJobArgumentsError`."""
        if not isinstance(args, Mapping):
            raise InvalidJobArgumentsError(
                f"job {self.name}: arguments must be a mapping of name to value, got "
                f"{type(args).__name__}"
            )
        try:
            return self.model.model_validate(dict(args)).model_dump(mode="json")
        except pydantic.ValidationError as exc:
            raise InvalidJobArgumentsError(f"job {self.name}: invalid arguments: {exc}") from None
        except (PydanticSerializationError, TypeError, ValueError) as exc:
            raise InvalidJobArgumentsError(
                f"job {self.name}: arguments cannot be stored as JSON: {exc}"
            ) from None

    def kwargs(self, payload: Any) -> dict[str, Any]:
        """The stored payload back as the function's keyword arguments (validated again)."""
        # A model's __dict__ holds exactly its fields' values (pydantic v2): copying it is a
        # fraction of the cost of reading each field back by name, per job.
        return dict(self.model.model_validate(payload).__dict__)


def result_json(value: Any) -> Any:
    """A job's return value as JSON-ready data (its repr when it has no JSON form)."""
    return to_jsonable_python(value, fallback=lambda v: repr(v)[:2000])


def _arguments_model(
    name: str, fn: Callable[..., Any]
) -> tuple[type[pydantic.BaseModel], str | None]:
    try:
        hints = get_type_hints(fn)
    except Exception as exc:  # a forward reference that does not resolve
        raise ConfigError(f"job {name}: cannot read its type hints: {exc}") from exc
    fields: dict[str, Any] = {}
    context_param = None
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigError(
                f"job {name}: parameter {param.name!r} must be an ordinary named parameter "
                "(jobs are stored with keyword arguments)"
            )
        hint = hints.get(param.name, Any)
        if hint is JobContext:
            context_param = param.name
            continue
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hint, default)
    config = pydantic.ConfigDict(extra="forbid")
    try:
        model = pydantic.create_model(f"{name}_args", __config__=config, **fields)
    except (pydantic.PydanticSchemaGenerationError, TypeError) as exc:
        raise ConfigError(
            f"job {name}: its arguments cannot be validated or stored: {exc}"
        ) from exc
    return model, context_param


@dataclass(frozen=True, slots=True)
class Schedule:
    """Enqueue ``job`` with ``args`` at every tick of ``cron`` (5 fields, or 6 with seconds
    last), once per tick across every worker. A tick older than ``misfire`` when a worker first
    sees it (no worker was running) is skipped rather than run late."""

    name: str
    cron: str
    job: str
    args: Mapping[str, Any] = field(default_factory=dict)
    queue: str | None = None
    misfire: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        from croniter import croniter

        if not self.name or len(self.name) > 200:
            raise ConfigError(f"schedule names are 1 to 200 characters, got {self.name!r}")
        if not isinstance(self.cron, str) or not croniter.is_valid(self.cron):
            raise ConfigError(
                f"schedule {self.name}: {self.cron!r} is not a cron expression "
                "(e.g. '*/5 * * * *', or '* * * * * */10' with seconds last)"
            )
        if self.misfire <= timedelta(0):
            raise ConfigError(f"schedule {self.name}: misfire must be positive")


class JobRegistry:
    """Jobs by name, and cron schedules. Workers and producers must share the same definitions
    (import the module that declares them)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self.schedules: list[Schedule] = []

    def schedule(
        self,
        cron: str,
        job: str | Job,
        args: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        queue: str | None = None,
        misfire: timedelta = timedelta(seconds=60),
    ) -> Schedule:
        """Run ``job`` on a cron schedule (``name`` defaults to the job's name)."""
        target = self.get(job.name if isinstance(job, Job) else job)
        target.payload(args or {})  # bad arguments fail now, not at the first tick
        made = Schedule(name or target.name, cron, target.name, dict(args or {}), queue, misfire)
        if any(s.name == made.name for s in self.schedules):
            raise ConfigError(f"a schedule named {made.name!r} exists already")
        self.schedules.append(made)
        return made

    def __iter__(self) -> Iterator[Job]:
        return iter(self._jobs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    @property
    def names(self) -> list[str]:
        return sorted(self._jobs)

    def get(self, name: str) -> Job:
        try:
            return self._jobs[name]
        except KeyError:
            known = ", ".join(self.names) or "none registered"
            raise UnknownJobError(f"unknown job {name!r}; known jobs: {known}") from None

    def add(self, job: Job) -> Job:
        old = self._jobs.get(job.name)
        if old is not None and old.fn is not job.fn:
            raise ConfigError(f"two different functions are registered as job {job.name!r}")
        # A queue is served by workers or by a hand-off runner, never both: a mix would have
        # workers run hand-off jobs (or the runner publish jobs meant to run here).
        mixed = next(
            (j for j in self._jobs.values() if j.queue == job.queue and j.handoff != job.handoff),
            None,
        )
        if mixed is not None:
            kinds = ("a hand-off job", "a worker job")
            raise ConfigError(
                f"queue {job.queue!r} holds {kinds[not mixed.handoff]} ({mixed.name}); "
                f"{job.name} is {kinds[not job.handoff]}: give it a queue of its own"
            )
        self._jobs[job.name] = job
        return job

    def handoff_queues(self) -> set[str]:
        """The queues of hand-off jobs: served by ``tether jobs handoff``, not by workers."""
        return {j.queue for j in self._jobs.values() if j.handoff}

    def job(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        queue: str = DEFAULT_QUEUE,
        priority: int = 0,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry: RetryPolicy | None = None,
        timeout: timedelta | float | None = None,
        transactional: bool = False,
        handoff: bool = False,
    ) -> Any:
        """Register ``fn`` (async or sync) as a job; usable bare (``@registry.job``) or with
        options (``@registry.job(queue="emails", timeout=30)``)."""

        def register(f: Callable[..., Any]) -> Job:
            return self.add(
                define(
                    f,
                    name=name,
                    queue=queue,
                    priority=priority,
                    max_attempts=max_attempts,
                    retry=retry,
                    timeout=timeout,
                    transactional=transactional,
                    handoff=handoff,
                )
            )

        return register(fn) if fn is not None else register


def define(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    queue: str = DEFAULT_QUEUE,
    priority: int = 0,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    retry: RetryPolicy | None = None,
    timeout: timedelta | float | None = None,
    transactional: bool = False,
    handoff: bool = False,
) -> Job:
    job_name = name or f"{fn.__module__}.{fn.__qualname__}"
    if not job_name or len(job_name) > 200:
        raise ConfigError(f"job names are 1 to 200 characters, got {job_name!r}")
    if not queue or len(queue) > 100:
        raise ConfigError(f"queue names are 1 to 100 characters, got {queue!r}")
    if max_attempts < 1:
        raise ConfigError(f"job {job_name}: max_attempts must be at least 1, got {max_attempts}")
    limit = _timeout(job_name, timeout)
    model, context_param = _arguments_model(job_name, fn)
    is_async = inspect.iscoroutinefunction(fn)
    if transactional and (not is_async or context_param is None):
        raise ConfigError(
            f"job {job_name}: transactional=True needs an async function with a JobContext "
            "parameter (its effects are written through ctx.tx)"
        )
    return Job(
        name=job_name,
        fn=fn,
        model=model,
        queue=queue,
        priority=priority,
        max_attempts=max_attempts,
        retry=retry or RetryPolicy(max_attempts=max_attempts),
        timeout=limit,
        transactional=transactional,
        context_param=context_param,
        is_async=is_async,
        handoff=handoff,
    )


def _timeout(name: str, value: timedelta | float | None) -> timedelta | None:
    if value is None:
        return None
    limit = value if isinstance(value, timedelta) else timedelta(seconds=float(value))
    if limit <= timedelta(0):
        raise ConfigError(f"job {name}: timeout must be positive, got {value!r}")
    return limit


#: The registry ``@job`` uses unless given another.
registry = JobRegistry()


def job(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Register a job in the default :data:`registry` (see :meth:`JobRegistry.job`)."""
    return registry.job(fn, **options)
