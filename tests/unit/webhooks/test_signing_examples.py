"""The receiver example runs and prints what docs/webhook-signing.md says it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def run_example(path: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", result.stderr
    return result.stdout


def test_webhook_receiver_example() -> None:
    lines = run_example("examples/webhook_receiver.py").splitlines()
    assert lines[0] == "delivered: 200 {'status': 'handled order.paid'}"
    assert lines[1] == "retried: 200 {'status': 'duplicate, ignored'}"
    assert lines[2].startswith("forged: 401 {'error': 'no webhook signature matches")
    assert lines[3].startswith("stale: 401 {'error': 'webhook timestamp is 60")
    assert lines[4] == "during rotation: 200 {'status': 'handled order.paid'}"
