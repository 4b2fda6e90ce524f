"""Runs the official AsyncAPI parser (@asyncapi/parser, from npm) on a document.

The parser lives in tests/support/asyncapi (package.json and its lock); scripts/install runs
``npm ci`` there. Node and npm are required: without them the tests that use this fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "asyncapi"
SCRIPT = HERE / "validate.mjs"


def _require_parser() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise AssertionError(
            "node and npm are required to run the official AsyncAPI parser "
            f"(node: {node or 'missing'}, npm: {npm or 'missing'}): install Node.js 18+"
        )
    if not (HERE / "node_modules" / "@asyncapi" / "parser").is_dir():
        # What scripts/install does; here too, so a fresh checkout's test run is complete.
        done = subprocess.run(
            [npm, "ci", "--prefix", str(HERE), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"npm ci in {HERE} failed:\n{done.stdout}{done.stderr}")
    return node


def diagnostics(document: Path) -> list[dict[str, Any]]:
    """Every diagnostic the parser reports: ``severity`` is error, warning, info or hint."""
    node = _require_parser()
    done = subprocess.run(
        [node, str(SCRIPT), str(document)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=HERE,
    )
    if done.returncode != 0:
        raise AssertionError(f"the AsyncAPI parser did not run:\n{done.stdout}{done.stderr}")
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def errors(document: Path) -> list[dict[str, Any]]:
    return [d for d in diagnostics(document) if d["severity"] == "error"]
