"""Run a file under examples/ the way a reader would, and hand back what it printed.

The reader's shell must not leak into the run: TETHER_* settings (and any other prefixes a
test names) are dropped from the environment, so an example shows its own defaults.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_example(
    path: str,
    *args: str,
    extra_env: Mapping[str, str] | None = None,
    drop_env: tuple[str, ...] = ("TETHER_",),
    timeout: float = 60,
    stderr_empty: bool = False,
) -> str:
    """Run ``path`` (relative to the repo root) with ``args``; assert it exits 0 and return stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_env)}
    result = subprocess.run(
        [sys.executable, str(ROOT / path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**env, **(extra_env or {})},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if stderr_empty:
        assert result.stderr == "", result.stderr
    return result.stdout
