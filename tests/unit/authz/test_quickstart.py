"""The quickstart that docs/authz.md quotes runs and prints what the docs say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

EXPECTED = """\
True
False
allowed: ravi trade:approve in acme by trade:approve (direct grant, org acme, until 2026-01-08T00:00:00+00:00)
Missing capability: trade:approve
True False not_owner
True
denied: ravi trade:approve in acme: grant expired at 2026-01-08T00:00:00+00:00
True
"""


def test_quickstart_output() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "authz_quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout == EXPECTED
