"""examples/realtime_quickstart.py runs and prints what docs/realtime.md says it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_quickstart_runs() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "realtime_quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "subscribed to org:acme: recovering=True recovered=True" in result.stdout
    assert "seen in order: ['A-1', 'B-2', 'C-3']" in result.stdout
