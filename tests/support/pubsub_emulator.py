"""The Google Cloud Pub/Sub emulator, started once per test module on a free loopback port.

The emulator comes from Debian's package ``google-cloud-cli-pubsub-emulator`` (Google's apt
repository; it needs Java). ``scripts/services`` installs it when apt can. Without it the tests
that use it fail, naming the package: nothing is skipped.

Import the fixture into a test module (``from tests.support.pubsub_emulator import
pubsub_emulator_fixture``) and take ``pubsub_emulator``: the emulator's ``host:port``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BINARY = Path(
    os.environ.get(
        "TETHER_TEST_PUBSUB_EMULATOR",
        "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    )
)
PACKAGE = "google-cloud-cli-pubsub-emulator"
STARTUP_TIMEOUT = 90.0
PROJECT = "tether-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _answers(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/", timeout=1) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


# Module scope, not session: the emulator's JVM keeps burning CPU while idle, and under
# pytest-xdist (files kept whole per worker) a session fixture would keep one running on each
# worker that ever touched it until the whole run ends.
@pytest.fixture(scope="module", name="pubsub_emulator")
def pubsub_emulator_fixture() -> Iterator[str]:
    """``host:port`` of a Pub/Sub emulator of this test module (killed at its end)."""
    if not BINARY.is_file():
        pytest.fail(
            f"the Pub/Sub emulator is not installed ({BINARY} is missing): install Debian's "
            f"package {PACKAGE} from Google's apt repository (https://packages.cloud.google.com/apt "
            f"cloud-sdk main), e.g. apt-get install {PACKAGE}; it needs Java 17+",
            pytrace=False,
        )
    host = f"127.0.0.1:{_free_port()}"
    with tempfile.TemporaryDirectory(prefix="pubsub-emulator-") as data_dir:
        log_path = Path(data_dir) / "emulator.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                _command(host.rsplit(":", 1)[1]),
                cwd=data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the JVM goes with it
            )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not _answers(host):
                if process.poll() is not None or time.monotonic() > deadline:
                    why = (
                        f"exited with {process.returncode}"
                        if process.poll() is not None
                        else f"did not answer within {STARTUP_TIMEOUT:.0f}s"
                    )
                    pytest.fail(
                        f"the Pub/Sub emulator on {host} {why}; its log:\n"
                        + log_path.read_text(errors="replace")[-3000:],
                        pytrace=False,
                    )
                time.sleep(0.2)
            yield host
        finally:
            _stop(process)


def _command(port: str) -> list[str]:
    """The emulator's command line. Through util-linux's ``setpriv --pdeathsig`` when there
    is one: the kernel then kills the emulator when pytest dies, even by SIGKILL (a timeout)
    when no ``finally`` runs; the launcher script and ``setpriv`` exec, so it is the JVM."""
    command = [str(BINARY), "--host=127.0.0.1", f"--port={port}"]
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *command] if setpriv else command


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass


@dataclass
class Topic:
    """A uniquely named topic with one subscription (message ordering on), made through the
    emulator's REST API; :meth:`pull` reads and acknowledges what arrived."""

    host: str
    project: str = PROJECT
    name: str = field(default_factory=lambda: f"t-{uuid.uuid4().hex[:16]}")
    ordering: bool = True

    @property
    def subscription(self) -> str:
        return f"{self.name}-all"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"http://{self.host}/v1/projects/{self.project}/{path}",
            method=method,
            data=json.dumps(body or {}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read() or b"{}")

    def create(self) -> Topic:
        self._call("PUT", f"topics/{self.name}")
        self._call(
            "PUT",
            f"subscriptions/{self.subscription}",
            {
                "topic": f"projects/{self.project}/topics/{self.name}",
                "enableMessageOrdering": self.ordering,
                "ackDeadlineSeconds": 60,
            },
        )
        return self

    def delete(self) -> None:
        for path in (f"subscriptions/{self.subscription}", f"topics/{self.name}"):
            try:
                self._call("DELETE", path)
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise

    def pull(self, max_messages: int = 1000) -> list[dict[str, Any]]:
        """One pull (returning at once) of up to ``max_messages``, acknowledged; each message
        with ``data`` decoded to bytes."""
        reply = self._call(
            "POST",
            f"subscriptions/{self.subscription}:pull",
            {"maxMessages": max_messages, "returnImmediately": True},
        )
        received = reply.get("receivedMessages", [])
        if received:
            self._call(
                "POST",
                f"subscriptions/{self.subscription}:acknowledge",
                {"ackIds": [r["ackId"] for r in received]},
            )
        out = []
        for r in received:
            message = dict(r["message"])
            message["data"] = base64.b64decode(message.get("data", ""))
            out.append(message)
        return out

    def pull_all(
        self, expected: int | None = None, quiet: float = 0.5, limit: float = 60.0
    ) -> list[dict[str, Any]]:
        """Pull until ``expected`` messages arrived (or, without it, until nothing came for
        ``quiet`` seconds); bounded by ``limit`` seconds."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + limit
        last = time.monotonic()
        while time.monotonic() < deadline:
            got = self.pull()
            out.extend(got)
            if expected is not None and len(out) >= expected:
                break
            if got:
                last = time.monotonic()
            elif expected is None and time.monotonic() - last >= quiet:
                break
            else:
                time.sleep(0.02)
        return out
