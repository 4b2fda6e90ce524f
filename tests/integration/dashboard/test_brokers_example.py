"""examples/dashboard_brokers.py (quoted by docs/dashboard.md) runs and prints what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import services

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.postgres
def test_the_brokers_example_resets_a_circuit_and_replays_a_consumer_dead_letter() -> None:
    services.require("postgres")
    services.require("redis")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples/dashboard_brokers.py"), services.PG_ADMIN_DSN,
         services.REDIS_URL],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "circuit: ['open']",
        "reset: 303 ['closed']",
        "consumer dead letters: 1 True",
        "replay: 1 303",
        "back on the stream: OrderPlaced deliveries 1",
    ], result.stdout
