"""``tether demo`` end to end in a subprocess: no services, the closing line reports 0 lost."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_loses_nothing_through_an_outage() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    result = subprocess.run(
        [sys.executable, "-m", "tether.cli", "demo", "--duration", "4", "--no-live", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.strip().splitlines()
    closing = lines[-1]
    assert re.search(r"(?<!\d)0 lost$", closing), closing
    assert re.search(r"(?<!\d)0 out of order", closing), closing
    produced = int(re.search(r"produced ([\d,]+) events", closing).group(1).replace(",", ""))  # type: ignore[union-attr]
    delivered = int(re.search(r"delivered ([\d,]+)", closing).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert produced == delivered > 50
    # The scenario really happened: the outage and the inbox dropping redeliveries.
    assert any("broker DOWN" in line for line in lines)
    assert any("broker=DOWN" in line for line in lines)
    assert re.search(r"\(([1-9]\d*) duplicate deliveries dropped by the inbox\)", closing), closing
