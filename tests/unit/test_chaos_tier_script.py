"""``scripts/test-chaos``: a chaos tier that collects no test fails the full run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_tier(tmp_path: Path, pytest_exit: int, *args: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "pytest"
    fake.write_text(f"#!/bin/sh\nexit {pytest_exit}\n")
    fake.chmod(0o755)
    env = {**os.environ, "TETHER_TEST_PYTEST": str(fake)}
    return subprocess.run(
        [str(ROOT / "scripts" / "test-chaos"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_full_run_fails_when_no_chaos_test_is_collected(tmp_path: Path) -> None:
    result = run_tier(tmp_path, 5)
    assert result.returncode == 1
    assert "collected no test" in result.stderr


@pytest.mark.parametrize(("pytest_exit", "expected"), [(0, 0), (1, 1), (2, 2)])
def test_pytest_exit_is_the_tier_exit(tmp_path: Path, pytest_exit: int, expected: int) -> None:
    assert run_tier(tmp_path, pytest_exit).returncode == expected


def test_a_narrowed_run_may_select_no_chaos_test(tmp_path: Path) -> None:
    assert run_tier(tmp_path, 5, "tests/unit").returncode == 0
