"""One finding: where, which rule, what is wrong and how to fix it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True, order=True)
class Violation:
    path: str
    line: int
    rule: str
    message: str
    fix: str

    def format(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message}\n    fix: {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
