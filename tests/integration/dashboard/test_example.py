"""examples/dashboard_mount.py (quoted by docs/dashboard.md) runs and prints what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import services

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.postgres
def test_the_mounted_dashboard_example_replays_a_dead_job() -> None:
    services.require("postgres")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples/dashboard_mount.py"), services.PG_ADMIN_DSN],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for line in (
        "dead jobs: 1 True", "replay: 303 200", "runner: alive", "result: invoice 42 synced",
    ):  # fmt: skip
        assert line in result.stdout, result.stdout
