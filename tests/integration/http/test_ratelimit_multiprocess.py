"""Four app processes share one Redis: together they never admit more than the limit."""

from __future__ import annotations

import multiprocessing
import uuid
from collections import Counter

import pytest

from tests.integration.http import ratelimit_worker
from tether.http.ratelimit import Algorithm, Limit

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PROCESSES = 4
REQUESTS_EACH = 200
# A one-hour window and a 12 s GCRA interval: the test (a few seconds) never reaches a window
# boundary or an emission interval, so the admitted total must equal the limit exactly.
LIMIT = Limit("exact", 300, 3600)


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_four_processes_admit_exactly_the_limit(redis_url: str, algorithm: Algorithm) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    prefix = f"test:rl4:{uuid.uuid4().hex}:"
    args = (barrier, results, redis_url, prefix, REQUESTS_EACH, LIMIT, algorithm.value)
    procs = [ctx.Process(target=ratelimit_worker.run, args=args) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    try:
        totals: Counter[int] = Counter()
        for _ in procs:
            totals.update(results.get(timeout=60))
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert totals[200] == LIMIT.limit
    assert totals[429] == PROCESSES * REQUESTS_EACH - LIMIT.limit
    assert sum(n for code, n in totals.items() if code >= 500) == 0
