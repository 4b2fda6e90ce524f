"""The pooler tier: Debian's PgBouncer in transaction mode, with its default parameters.

One PgBouncer per test session, started here on a free loopback port in front of the suite's
PostgreSQL (no ``ignore_startup_parameters``, no prepared-statement tracking: exactly what a
user gets from the package). Each test gets a fresh database reached through it.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support import pg, services

pytestmark = pytest.mark.postgres

RUN_AS = "postgres"  # PgBouncer refuses to run as root


@dataclass(frozen=True)
class Pooler:
    port: int
    log: Path

    def dsn(self, direct_dsn: str) -> str:
        """``direct_dsn`` with its host and port replaced by the pooler's."""
        parts = urlsplit(direct_dsn)
        user = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if found is None:
        pytest.fail(
            "pgbouncer is not installed: run scripts/services (or apt-get install pgbouncer)",
            pytrace=False,
        )
    return found


def _config(folder: Path, port: int, user: str) -> Path:
    upstream = urlsplit(services.PG_ADMIN_DSN)
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    ini = folder / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"* = host={upstream.hostname or '127.0.0.1'} port={upstream.port or 5432}\n"
        "\n[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {folder / 'users.txt'}\n"
        f"admin_users = {user}\n"
        "pool_mode = transaction\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
        "pidfile =\n"
    )
    return ini


@pytest.fixture(scope="session")
def pooler() -> Iterator[Pooler]:
    services.require("postgres")
    binary = _binary()
    # Not under pytest's temp root: that is private to the user running the tests.
    folder = Path(tempfile.mkdtemp(prefix="tether-pgbouncer-"))
    user = urlsplit(services.PG_ADMIN_DSN).username or "postgres"
    port = _free_port()
    ini = _config(folder, port, user)
    command = [binary, str(ini)]
    if os.geteuid() == 0:
        shutil.chown(folder, RUN_AS)
        command[1:1] = ["-u", RUN_AS]
    stderr = (folder / "stderr.txt").open("wb")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 10
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                err = (folder / "stderr.txt").read_text()
                pytest.fail(f"pgbouncer did not start on port {port}: {err}", pytrace=False)
            time.sleep(0.05)
        yield Pooler(port, folder / "pgbouncer.log")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stderr.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test alone, not from the shell running the suite."""
    for name in [n for n in os.environ if n.startswith("TETHER_")]:
        if not name.startswith("TETHER_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def direct_dsn() -> Iterator[str]:
    """A fresh database with Tether's schema, reached directly (for setup and checks)."""
    with pg.fresh_database() as dsn:
        yield dsn


@pytest.fixture
def pooled_dsn(pooler: Pooler, direct_dsn: str) -> str:
    """The same database, reached through the transaction pooler."""
    return pooler.dsn(direct_dsn)


@pytest.fixture
def problems_logged(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """Call it at the end of a test: every WARNING or worse logged meanwhile (should be none)."""
    caplog.set_level(logging.WARNING)
    return lambda: [
        f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING
    ]
