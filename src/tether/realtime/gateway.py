"""The gateway: an ASGI app serving the Centrifuge protocol over WebSocket.

``Gateway(...)`` is itself an ASGI application (WebSocket on any path, plus lifespan), so
it can be served by uvicorn (``tether realtime``) or mounted in FastAPI/Starlette
(``app.mount("/realtime", gateway)``). Mounted apps get no lifespan events, so the gateway
also starts itself on its first connection; call :meth:`Gateway.stop` on shutdown.

Besides the connections it runs one housekeeping loop: pings every ``ping_interval``
seconds and disconnects a client whose pong is late (3012), re-checks guarded topic
subscriptions every ``recheck_interval`` (a revoked capability unsubscribes, code 2000),
and ends connections whose token expired (3005, the SDKs reconnect with a fresh token).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

from starlette.types import Receive, Scope, Send

from tether.ops.runners import Heartbeat, RunnerRegistry
from tether.realtime import protocol
from tether.realtime.access import ChannelAccess, Verdict
from tether.realtime.backplane import Backplane, BackplaneUnavailable, Delivery, Position
from tether.realtime.channels import Channel
from tether.realtime.hub import Hub
from tether.realtime.identity import Identity, TokenVerifier
from tether.realtime.memory import MemoryBackplane
from tether.realtime.protocol import Disconnect
from tether.realtime.session import Session

_log = logging.getLogger("tether.realtime")


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    ping_interval: int = 25
    pong_timeout: float = 10.0
    connect_timeout: float = 10.0
    close_timeout: float = 5.0
    recheck_interval: float = 0.5
    max_pending_bytes: int = 1 << 20
    max_message_bytes: int = 64 * 1024
    max_commands: int = 100
    max_channels: int = 128
    max_connections_per_user: int = 100
    max_subscriptions_per_user: int = 1000

    def __post_init__(self) -> None:
        for name in (
            "ping_interval",
            "max_pending_bytes",
            "max_message_bytes",
            "max_commands",
            "max_channels",
            "max_connections_per_user",
            "max_subscriptions_per_user",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"GatewaySettings.{name} must be >= 1")
        for name in ("pong_timeout", "connect_timeout", "close_timeout", "recheck_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"GatewaySettings.{name} must be > 0 seconds")


@dataclass(slots=True)
class Stats:
    slow: int = 0
    bad_frames: int = 0
    no_pong: int = 0
    revoked: int = 0
    recoveries: int = 0
    unrecovered: int = 0
    local_only: int = 0
    disconnects: int = 0  # every close the gateway made, whatever the reason


class Gateway:
    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        access: ChannelAccess | None = None,
        backplane: Backplane | None = None,
        settings: GatewaySettings | None = None,
        version: str = "tether",
        registry: RunnerRegistry | None = None,
        name: str | None = None,
        registry_interval_s: float = 10.0,
    ) -> None:
        """``registry``: :meth:`start` registers the gateway there (as ``name``, by default
        ``<host>:<pid>``) and it beats every ``registry_interval_s`` seconds until :meth:`stop`."""
        self.verifier = verifier
        self.registry = registry
        self.name = name
        self.registry_interval_s = registry_interval_s
        self._heartbeat: Heartbeat | None = None
        self.access = access or ChannelAccess()
        self.backplane: Backplane = backplane or MemoryBackplane()
        self.settings = settings or GatewaySettings()
        self.version = version
        self.hub = Hub()
        self.stats = Stats()
        self.sessions: set[Session] = set()
        self._per_user: Counter[str] = Counter()
        self.subs_per_user: Counter[str] = Counter()  # across this process's connections
        self._loop_task: asyncio.Task[None] | None = None
        self._starting: asyncio.Lock | None = None
        self.started = False

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.started:
                return
            await self.backplane.start(self.hub.deliver, self.hub.resync_all)
            self._loop_task = asyncio.create_task(self._housekeeping(), name="tether-rt-sweep")
            if self.registry is not None:
                self._heartbeat = Heartbeat(
                    self.registry,
                    "realtime-gateway",
                    self.name,
                    interval_s=self.registry_interval_s,
                    stats=self.runner_stats,
                )
                await self._heartbeat.__aenter__()
            self.started = True

    def runner_stats(self) -> dict[str, float]:
        """What the gateway reports to the runner registry at each beat."""
        return {
            "connections": len(self.sessions),
            "channels": len(self.hub.channels),
            "messages_total": self.hub.fanned_out,
            "disconnects_total": self.stats.disconnects,
        }

    async def stop(self) -> None:
        for session in list(self.sessions):
            session.disconnect(Disconnect.SHUTDOWN)
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        await self.backplane.close()
        if self._heartbeat is not None:
            await self._heartbeat.__aexit__(None, None, None)
            self._heartbeat = None
        self.started = False

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # --- publishing -----------------------------------------------------------------------

    async def publish(
        self, channel: Channel, data: bytes, tags: dict[str, str] | None = None
    ) -> Position | None:
        """Publish encoded JSON ``data`` to ``channel`` through the backplane.

        While the backplane is down the publication reaches this gateway's own subscribers
        only, without an offset, and None is returned: nothing is kept for recovery."""
        body = protocol.publication_body(data, tags)
        try:
            return await self.backplane.publish(channel.key, body)
        except BackplaneUnavailable:
            self.stats.local_only += 1
            self.hub.deliver(Delivery(channel.key, "", 0, body))
            return None

    # --- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            body = b"WebSocket only: connect with a Centrifuge client SDK\n"
            await send(
                {
                    "type": "http.response.start",
                    "status": 426,
                    "headers": [(b"content-type", b"text/plain"), (b"upgrade", b"websocket")],
                }
            )
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.started:
            await self.start()
        if (await receive())["type"] != "websocket.connect":
            return
        if "centrifuge-protobuf" in scope.get("subprotocols", ()):
            await send(
                {
                    "type": "websocket.close",
                    "code": 3501,
                    "reason": "protobuf is not supported: use the JSON protocol",
                }
            )
            return
        await send({"type": "websocket.accept"})
        session = Session(self, send, _transport_of(send))
        self.sessions.add(session)
        writer = asyncio.create_task(session.writer())
        try:
            await session.serve(receive)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            if not session.reaped:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()  # our own cancel of a reader stuck on a silent client
        except Exception:  # one connection's failure never reaches the server
            _log.exception("realtime connection %s failed", session.client)
            session.disconnect(Disconnect.INTERNAL)
        finally:
            self._forget(session)
            if not writer.done():
                if session.close_code is None:
                    writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    async with asyncio.timeout(self.settings.close_timeout):
                        await writer

    def admit(self, session: Session, identity: Identity) -> bool:
        if self._per_user[identity.user] >= self.settings.max_connections_per_user:
            return False
        self._per_user[identity.user] += 1
        return True

    def _forget(self, session: Session) -> None:
        session.release()
        self.sessions.discard(session)
        if session.identity is not None:
            user = session.identity.user
            self._per_user[user] -= 1
            if self._per_user[user] <= 0:
                del self._per_user[user]

    # --- housekeeping ---------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        interval = min(self.settings.recheck_interval, 1.0)
        while True:
            await asyncio.sleep(interval)
            try:
                self.sweep_pings(time.monotonic())
                self.sweep_expired(time.time())
                await self.sweep_access()
            except Exception:  # the loop must outlive one bad check
                _log.exception("realtime housekeeping failed")

    def sweep_pings(self, now: float) -> None:
        settings = self.settings
        for session in list(self.sessions):
            if session.identity is None or session.close_code is not None:
                continue
            if session.pong_due is not None and now > session.pong_due:
                self.stats.no_pong += 1
                session.disconnect(Disconnect.NO_PONG)
            elif session.pong_due is None and now - session.last_ping >= settings.ping_interval:
                session.last_ping = now
                session.pong_due = now + settings.pong_timeout
                session.push("{}")

    def sweep_expired(self, now: float) -> None:
        for session in list(self.sessions):
            identity = session.identity
            if (
                identity is not None
                and identity.expires_at is not None
                and now >= identity.expires_at
            ):
                session.disconnect(Disconnect.EXPIRED)

    async def sweep_access(self) -> None:
        """Unsubscribe every guarded subscription whose right is gone."""
        decided: dict[tuple[str, str | None, str], Verdict] = {}
        # By channel, not by session: a channel that cannot be revoked (personal, org) is
        # skipped whole, so 10,000 org subscribers cost one check, not 10,000 every sweep.
        for entry in list(self.hub.channels.values()):
            first = next(iter(entry.subs.values()), None)
            if first is None or not self.access.revocable(first.channel):
                continue
            for session, sub in list(entry.subs.items()):
                identity = session.identity
                if identity is None:
                    continue
                channel = sub.channel
                key = (identity.user, identity.org, channel.name)
                verdict = decided.get(key)
                if verdict is None:
                    verdict = decided[key] = await self.access.check(identity, channel)
                if verdict is not Verdict.ALLOWED:
                    self.stats.revoked += 1
                    session.drop(sub, protocol.Unsubscribe.SERVER, "permission revoked")

    def describe(self) -> dict[str, Any]:
        return {"connections": len(self.sessions), "subscriptions": self.hub.subscribers()}


def _transport_of(send: Send) -> asyncio.WriteTransport | None:
    """The socket transport behind ``send`` when ``send`` is the server's own bound method
    (uvicorn's WebSocket protocols keep it as ``.transport``); None when a middleware wraps
    ``send`` or the server keeps it to itself: then every frame goes through ``send``."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    # Duck-typed: uvloop's transports are not asyncio.WriteTransport subclasses.
    if all(
        callable(getattr(transport, name, None))
        for name in ("write", "get_write_buffer_size", "is_closing")
    ):
        return cast("asyncio.WriteTransport", transport)
    return None
