"""Jobs for the command-line tests: ``tether worker --app tests.integration.jobs.sample_app``."""

from __future__ import annotations

import asyncio

from tether.jobs import job


@job(name="sample.quick")
async def quick(n: int) -> int:
    return n * 2


@job(name="sample.slow")
async def slow(seconds: float) -> None:
    await asyncio.sleep(seconds)


@job(name="sample.broken", max_attempts=1)
def broken() -> None:
    raise RuntimeError("broken on purpose")
