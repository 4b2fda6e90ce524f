"""What an event catalog adds to ``add_event``: validation by the pydantic model.

    .venv/bin/python benchmarks/catalog_cost.py [--calls 3000] [--rounds 5]

Variants, interleaved round by round, median of the rounds, microseconds per call:

* ``build``        ``add_event``'s Python before any I/O (envelope checks, JSON encoding)
* ``build+catalog``  ... with ``ProducerPolicy(catalog=...)`` and a registered type
* ``sqlite``       ``add_event_sync`` into a SQLite file inside one open transaction
* ``sqlite+catalog`` ... with the catalog

Informational: the catalog's share is one ``model_validate`` and one ``model_dump`` per call.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

from tether.catalog import EventCatalog
from tether.outbox import ProducerPolicy, add_event_sync, configure
from tether.outbox.producer import _build
from tether.store.sqlite.ddl import migrate_sync


class Line(BaseModel):
    sku: str
    quantity: int


class OrderPlaced(BaseModel):
    order_id: str
    customer_id: str
    total_cents: int
    lines: list[Line]


PAYLOAD = {
    "order_id": "o-1",
    "customer_id": "c-9",
    "total_cents": 1250,
    "lines": [{"sku": "mug", "quantity": 2}, {"sku": "kettle", "quantity": 1}],
}
FIELDS = {"aggregate_type": "order", "aggregate_id": "o-1"}


def per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    catalog = EventCatalog()
    catalog.register(model=OrderPlaced, type="OrderPlaced", version=1, topic="order")
    with_catalog, without = ProducerPolicy(catalog=catalog), ProducerPolicy()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "bench.db")
        migrate_sync(db)

        def build() -> object:
            return _build("OrderPlaced", PAYLOAD, dict(FIELDS))

        def write() -> object:
            return add_event_sync(db, "OrderPlaced", PAYLOAD, **FIELDS)

        variants = [("", without), ("+catalog", with_catalog)]
        for n in range(args.rounds):
            # Alternate which variant goes first, so warm-up and drift hit both alike.
            for name, policy in variants if n % 2 == 0 else variants[::-1]:
                configure(policy)
                results.setdefault(f"build{name}", []).append(per_call(build, args.calls))
                db.execute("BEGIN")
                results.setdefault(f"sqlite{name}", []).append(per_call(write, args.calls))
                db.rollback()  # every round starts from the same table size
        configure(without)
        db.close()
    medians = {name: round(statistics.median(values), 1) for name, values in results.items()}
    common.print_table(
        "add_event with and without an event catalog (median us per call)",
        ["variant", "us/call"],
        [[name, f"{value:.1f}"] for name, value in medians.items()],
    )
    common.emit_json(
        {
            "bench": "catalog_cost",
            "tether_us_per_call": medians["sqlite+catalog"],
            "peer": "add_event_sync without a catalog",
            "peer_us_per_call": medians["sqlite"],
            "ratio": round(medians["sqlite+catalog"] / medians["sqlite"], 2),
            "us_per_call": medians,
            "calls": args.calls,
            "rounds": args.rounds,
            **common.environment(),
        }
    )


if __name__ == "__main__":
    main()
