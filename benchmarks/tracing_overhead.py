"""What the trace hooks cost when tracing is off, per call, against the unwrapped functions.

    .venv/bin/python benchmarks/tracing_overhead.py [--calls 20000] [--rounds 5]

With the OpenTelemetry API installed but no SDK tracer provider set (the state of an app that
has the ``otel`` extra and does not trace), each hook checks the provider and calls through:

* ``add_event hook``   the producer's hook around a function that does nothing, vs that
                       function: the hook's own cost (a producer transaction on PostgreSQL
                       takes hundreds of microseconds, benchmarks/producer_cost.py)
* ``sink.publish``     the relay's publish path, ``tracing.publisher(sink).publish`` vs
                       ``sink.publish`` on a MemorySink, one event per call (a hot key
                       publishes one wave per event: the worst case)
* ``relay.claimed``    the per-batch hook, for a batch of 1000 events

The two sides alternate in chunks of ``--calls`` calls, ``--rounds`` times; the figure is each
side's fastest chunk in ns per call (the least disturbed by other load on a shared machine).
Peer: the same call without the hook. Without the package the hooks are the functions themselves
(tests/unit/tracing), so the cost is zero by construction.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import emit_json, environment, load_note, print_table

from tether.core.envelope import make_event
from tether.ops import tracing
from tether.sinks.memory import MemorySink


def per_call_sync(fn: Callable[[], Any], calls: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - started) / calls


async def per_call_async(fn: Callable[[], Awaitable[Any]], calls: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        await fn()
    return (time.perf_counter_ns() - started) / calls


async def main(calls: int, rounds: int) -> None:
    assert tracing.installed(), "run with the otel extra installed"
    assert not tracing.active(), "run with no tracer provider set"

    def nothing(target: object, type: str, payload: object) -> None:
        return None

    hook = tracing.traced_add_event_sync(nothing)
    sink = MemorySink()
    one = [make_event("order.placed", {"id": 1})]
    batch = [type("C", (), {"event": e})() for e in one * 1000]
    results: dict[str, list[tuple[float, float]]] = {"add_event hook": [], "sink.publish": [],
                                                    "relay.claimed": []}  # fmt: skip
    for _ in range(rounds):
        hooked = per_call_sync(lambda: hook(None, "order.placed", None), calls)
        plain = per_call_sync(lambda: nothing(None, "order.placed", None), calls)
        results["add_event hook"].append((hooked, plain))
        hooked = await per_call_async(lambda: tracing.publisher(sink).publish(one), calls)
        plain = await per_call_async(lambda: sink.publish(one), calls)
        results["sink.publish"].append((hooked, plain))
        sink.events.clear()
        hooked = per_call_sync(lambda: tracing.claimed(batch), calls)
        results["relay.claimed"].append((hooked, 0.0))
    rows = []
    figures: dict[str, dict[str, float]] = {}
    for name, pairs in results.items():
        hooked = min(h for h, _ in pairs)
        plain = min(p for _, p in pairs)
        extra = hooked - plain
        figures[name] = {
            "hooked_ns": round(hooked),
            "plain_ns": round(plain),
            "extra_ns": round(extra),
        }
        rows.append((name, f"{hooked:,.0f}", f"{plain:,.0f}" if plain else "-", f"{extra:+,.0f}"))
    print(load_note())
    print_table(
        f"Trace hooks with tracing off, ns per call (fastest of {rounds} chunks x {calls} calls)",
        ["call", "with hook", "without (peer)", "extra"],
        rows,
    )
    add = figures["sink.publish"]
    emit_json({
        "bench": "tracing_overhead",
        "tether": figures,
        "peer": "the same calls without the hooks",
        "peer_ns": {k: v["plain_ns"] for k, v in figures.items()},
        "ratio": round(add["hooked_ns"] / add["plain_ns"], 3),
        "calls": calls,
        "rounds": rounds,
        **environment(),
    })  # fmt: skip


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--calls", type=int, default=2_000)
    p.add_argument("--rounds", type=int, default=30)
    args = p.parse_args()
    asyncio.run(main(args.calls, args.rounds))
