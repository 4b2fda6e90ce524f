"""What one doctor check reports: its name, a verdict, what it saw and, unless ok, the fix."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"  # works, but deserves a look (dead letters, a slow NOTIFY)
    FAIL = "fail"  # broken: the command exits non-zero
    SKIP = "skip"  # not applicable here, or a check it depends on failed


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}


def ok(name: str, detail: str) -> Result:
    return Result(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str) -> Result:
    return Result(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str) -> Result:
    return Result(name, Status.FAIL, detail, fix)


def skip(name: str, detail: str) -> Result:
    return Result(name, Status.SKIP, detail)


def failed(results: list[Result]) -> bool:
    return any(r.status is Status.FAIL for r in results)
