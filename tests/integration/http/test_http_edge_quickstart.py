"""examples/http_edge_quickstart.py runs and prints what docs/http-edge.md says it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_quickstart_prints_what_the_docs_promise() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "http_edge_quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in [
        "first: 201 {'payment': 1, 'amount': 42}",
        "retry: 201 {'payment': 1, 'amount': 42} replayed: true",
        'RateLimit-Policy: "strict";q=10;w=60, "standard";q=100;w=60',
        "same key, other body: 422 Idempotency-Key reused",
        "no key: 400 application/problem+json",
        "12 payments under the strict preset: 10 made, 2 refused",
        "429 body: ['error', 'message', 'retryAfter'] Retry-After:",
    ]:
        assert line in result.stdout, result.stdout
