"""Errors of the runner registry."""

from __future__ import annotations

import uuid


class UnknownRunner(LookupError):
    """A beat or stop for a runner the registry does not hold (never registered, or pruned after
    being silent for days): the heartbeat registers again."""

    def __init__(self, runner_id: uuid.UUID) -> None:
        super().__init__(f"no runner {runner_id} in the registry")
        self.runner_id = runner_id
