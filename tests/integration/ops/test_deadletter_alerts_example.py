"""examples/deadletter_alerts.py runs and prints what docs/alerts.md and docs/sinks.md say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_example_runs() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "deadletter_alerts.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in [
        "http outcomes: [True, True]",
        """workflow got: ['OrderPlaced order/o-1 {"order":1}', 'OrderPlaced order/o-2 {"order":2}']""",
        "slack got: OrderPlaced · order/o-1",
        "dead=3: ['Dead letters growing: 3 dead in payments (was 0)']",
        "dead=3: no alert",
        "dead=120: ['Dead letters over threshold: 120 dead in payments (threshold 100)']",
        "dead=0: ['Dead letters cleared: none left in payments (was 120)']",
        "webhook alerts: ['increase', 'threshold', 'cleared']",
    ]:
        assert line in result.stdout, result.stdout
