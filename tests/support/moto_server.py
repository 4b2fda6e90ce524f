"""moto's server as a stand-in for Amazon SQS: started per session (or per test) on a free
loopback port, from its own venv ``.venv-moto`` (moto's boto3 pins a botocore that conflicts
with aiobotocore's, so it cannot live in ``.venv``). ``scripts/install`` creates that venv; a
missing one fails the test, never skips it."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MOTO_SERVER = ROOT / ".venv-moto" / "bin" / "moto_server"
REGION = "us-east-1"
CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
"""moto accepts any; explicit ones keep botocore from looking anywhere else for them."""
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1.0):
            return True
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_moto() -> Iterator[str]:
    """Start ``moto_server`` on 127.0.0.1 and yield its endpoint URL; stop it after."""
    if not MOTO_SERVER.exists():
        import pytest

        pytest.fail(
            f"{MOTO_SERVER.relative_to(ROOT)} is missing: run scripts/install (it creates "
            ".venv-moto, moto's server, the SQS stand-in the SQS sink's tests run against)",
            pytrace=False,
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Its request log goes to a file: a pipe nobody reads would fill and stall the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _answers(url):
                if process.poll() is not None:
                    log.seek(0)
                    err = log.read().decode(errors="replace")
                    raise RuntimeError(
                        f"moto_server exited with {process.returncode}: {err[-2000:]}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto_server did not answer on {url} within {START_TIMEOUT}s"
                    )
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
