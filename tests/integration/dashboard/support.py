"""Helpers of the dashboard tests: the app on a loopback port, users with capabilities,
dead letters of every kind made by the parts themselves, and a PNG's pixels read by Chromium."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from tether.authz import AuditMode, AuditRecord, Authz, DecisionLog, Registry, SqlAuthzStore
from tether.dashboard import DashboardSettings, OpsCap, TokenUsers, create_dashboard, digest

SECRET = "test-secret-key-0123456789-abcdefghijklmnop"
VIEWER = "viewer-token-0123456789abcdef"
OPERATOR = "operator-token-0123456789abcdef"
OUTSIDER = "outsider-token-0123456789abcdef"
USERS = TokenUsers({digest(VIEWER): "vera", digest(OPERATOR): "otto", digest(OUTSIDER): "oscar"})


@asynccontextmanager
async def capabilities(dsn: str) -> AsyncIterator[tuple[Authz, list[AuditRecord]]]:
    """vera may look, otto may look, replay and purge, oscar nothing. The decision log keeps
    denials only, so the actions' records prove they are written whatever the mode."""
    records: list[AuditRecord] = []
    store = SqlAuthzStore.from_url(dsn)
    authz = Authz(
        store, Registry(OpsCap), audit=DecisionLog(AuditMode.DENIALS, sink=records.append)
    )
    try:
        await authz.sync()
        for user in ("vera", "otto", "oscar"):
            await authz.add_user(user)
        await authz.grant("vera", OpsCap.VIEW)
        for cap in OpsCap:
            await authz.grant("otto", cap)
        yield authz, records
    finally:
        await store.close()


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """``app`` served by uvicorn in this loop on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task
        sock.close()


def dashboard(dsn: str, authz: Authz, **options: Any) -> Any:
    settings = DashboardSettings(dsn, SECRET, users=USERS, refresh_seconds=1, **options)
    return create_dashboard(settings, authz)


# Reads a PNG's pixels in Chromium (no imaging library needed): the share of pixels within
# `tolerance` of each wanted colour.
COLOUR_SHARE_JS = """
async ([b64, colours, tolerance]) => {
  const img = new Image();
  img.src = "data:image/png;base64," + b64;
  await img.decode();
  const c = document.createElement("canvas");
  c.width = img.width; c.height = img.height;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  const n = d.length / 4;
  return { width: c.width, height: c.height, shares: colours.map(([r, gg, b]) => {
    let hit = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (Math.abs(d[i] - r) <= tolerance && Math.abs(d[i + 1] - gg) <= tolerance
          && Math.abs(d[i + 2] - b) <= tolerance) hit++;
    }
    return hit / n;
  }) };
}
"""
