"""Why a guarded call did not run or did not finish. All are ``GuardRejected``."""

from __future__ import annotations

from tether.core.errors import TetherError


class GuardRejected(TetherError):
    """The guard did not let the call through, or stopped it."""

    def __init__(self, guard: str, message: str) -> None:
        super().__init__(f"guard {guard!r}: {message}")
        self.guard = guard


class CircuitOpen(GuardRejected):
    """The circuit is open: recent calls failed. Try again after ``retry_after`` seconds."""

    def __init__(self, guard: str, retry_after: float) -> None:
        super().__init__(guard, f"circuit open, retry in {retry_after:.1f} s")
        self.retry_after = retry_after


class GuardTimeout(GuardRejected):
    """The call took longer than the guard's timeout and was cancelled."""

    def __init__(self, guard: str, timeout: float) -> None:
        super().__init__(guard, f"call took longer than {timeout} s")
        self.timeout = timeout


class BulkheadFull(GuardRejected):
    """As many calls as the bulkhead allows are already running."""

    def __init__(self, guard: str, limit: int) -> None:
        super().__init__(guard, f"bulkhead full ({limit} calls running)")
        self.limit = limit
