"""``tether realtime``: bad settings exit 2 with one line; served, the SDK connects to it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner, Result

from tests.support.centrifuge_interop.sdk import client, subscribed
from tests.support.centrifuge_interop.serve import SECRET, token
from tether.cli import app

TETHER = [sys.executable, "-m", "tether.cli"]


def run(monkeypatch: pytest.MonkeyPatch, *args: str, secret: str | None) -> Result:
    for name in ("TETHER_REALTIME_JWT_SECRET", "TETHER_REALTIME_REDIS_URL", "TETHER_AUTHZ_URL"):
        monkeypatch.delenv(name, raising=False)
    if secret is not None:
        monkeypatch.setenv("TETHER_REALTIME_JWT_SECRET", secret)
    return CliRunner().invoke(app, ["realtime", *args])


@pytest.mark.parametrize(
    ("args", "secret", "says"),
    [
        ((), None, "no token key"),
        ((), "short", "at least 32 bytes"),
        (("--topic", "requirements"), SECRET, "name=capability"),
        (("--topic", "Bad Name=x:y", "--authz-url", "sqlite:///x.db"), SECRET, "topic name"),
        (("--topic", "requirements=requirement:view"), SECRET, "--authz-url"),
        (("--jwt-public-key", "/nonexistent.pem"), None, "nonexistent.pem"),
        (("--port", "0"), SECRET, "port"),
    ],
)
def test_bad_settings_exit_2(monkeypatch, args, secret, says) -> None:
    result = run(monkeypatch, "--check", *args, secret=secret)
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_check_accepts_good_settings(monkeypatch) -> None:
    result = run(monkeypatch, "--check", "--redis-url", "redis://127.0.0.1:6379/0", secret=SECRET)
    assert result.exit_code == 0, result.output
    assert "Redis backplane" in result.output


@pytest.mark.slow
async def test_served_gateway_takes_sdk_clients(redis_url) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "TETHER_REALTIME_JWT_SECRET": SECRET}
    proc = subprocess.Popen(
        [
            *TETHER,
            "realtime",
            "--port",
            str(port),
            "--redis-url",
            redis_url,
            "--prefix",
            f"tether:rt-cmd-{port}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        sdk, _ = client(
            f"ws://127.0.0.1:{port}/connection/websocket", token("alice", "acme"), timeout=2.0
        )
        await sdk.connect()
        try:
            await sdk.ready(timeout=20)
            seen = await subscribed(sdk, "user:alice")
            assert seen.subscribed
        finally:
            await sdk.disconnect()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
