"""One client connection: reads commands, answers them, and writes through a bounded buffer.

The send buffer is a deque of frames: replies are appended without awaiting, and one writer
task per connection drains it, joining whatever has piled up into one WebSocket message (the
protocol allows several replies per message). Fan-out takes a shorter road when the server
lets the gateway reach the connection's transport (uvicorn does, when nothing wraps the ASGI
``send``): the publication's pre-built frame is written straight to the transport, with no
task woken per subscriber, whenever nothing of this connection is queued or being sent (so
order holds); otherwise it joins the deque. Either way the bound counts what is queued plus
the transport's write buffer: a client that lets more than ``max_pending_bytes`` pile up is
disconnected with code 3008 ("slow"), so one slow reader never holds memory or slows the
others.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import Receive, Send

from tether.realtime import channels, metrics, protocol
from tether.realtime.access import Verdict
from tether.realtime.backplane import BackplaneUnavailable, Position, Recovery
from tether.realtime.hub import RESYNC, Sub
from tether.realtime.identity import Identity, TokenExpired, TokenRejected
from tether.realtime.protocol import BadFrame, Disconnect, ErrorCode

if TYPE_CHECKING:
    from tether.realtime.gateway import Gateway

_log = logging.getLogger("tether.realtime")


class Session:
    __slots__ = (
        "_close_reason",
        "_wake",
        "client",
        "close_code",
        "closed",
        "gateway",
        "identity",
        "last_ping",
        "pending",
        "pending_bytes",
        "pong_due",
        "reader",
        "reaped",
        "send",
        "sending",
        "subs",
        "transport",
    )

    def __init__(
        self, gateway: Gateway, send: Send, transport: asyncio.WriteTransport | None = None
    ) -> None:
        self.gateway = gateway
        self.send = send
        self.transport = transport  # the socket under ``send``, when the server exposes it
        self.sending = False  # the writer is inside ``send``: frames must queue behind it
        self.client = str(uuid.uuid4())
        self.identity: Identity | None = None
        self.subs: dict[str, Sub] = {}
        self.pending: deque[str] = deque()
        self.pending_bytes = 0
        self.close_code: Disconnect | None = None
        self._close_reason: str | None = None
        self.closed = False
        self.last_ping = time.monotonic()
        self.pong_due: float | None = None
        self._wake: asyncio.Future[None] | None = None  # the idle writer waits on it
        self.reader: asyncio.Task[Any] | None = None
        self.reaped = False

    # --- output ---------------------------------------------------------------------------

    def push(self, frame: str) -> None:
        """Queue ``frame``; never waits. Over the buffer's bound the client is cut off."""
        if self.close_code is not None:
            return
        size = len(frame)
        buffered = self.transport.get_write_buffer_size() if self.transport is not None else 0
        if self.pending_bytes + size + buffered > self.gateway.settings.max_pending_bytes:
            self.gateway.stats.slow += 1
            self.disconnect(Disconnect.SLOW)
            return
        self.pending.append(frame)
        self.pending_bytes += size
        self._rouse()

    def push_framed(self, frame: str, wire: bytes) -> None:
        """Fan-out: ``wire`` is ``frame`` already framed for WebSocket. Written to the
        transport at once when nothing is ahead of it; otherwise queued like ``push``."""
        transport = self.transport
        if (
            transport is None
            or self.pending
            or self.sending
            or self.close_code is not None
            or transport.is_closing()
        ):
            self.push(frame)
            return
        transport.write(wire)
        if transport.get_write_buffer_size() > self.gateway.settings.max_pending_bytes:
            self.gateway.stats.slow += 1
            self.disconnect(Disconnect.SLOW)

    def _rouse(self) -> None:
        # A bare future, not an asyncio.Event: fan-out calls this once per subscriber.
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)

    def disconnect(self, code: Disconnect, reason: str | None = None) -> None:
        """Close after what is already queued has been written (the writer does it)."""
        if self.close_code is None:
            self.close_code = code
            self._close_reason = reason
            metrics.DISCONNECTS.labels(protocol.REASONS.get(code, str(int(code)))).inc()
            self.gateway.stats.disconnects += 1
            if code is Disconnect.SLOW:  # what is queued would never be read in time
                self.pending.clear()
                self.pending_bytes = 0
            self._rouse()
            # A writer stuck on a socket the client stopped reading never gets to the close
            # frame: stop reading (which ends the connection) after two close timeouts.
            delay = 2 * self.gateway.settings.close_timeout
            asyncio.get_running_loop().call_later(delay, self._reap)

    async def writer(self) -> None:
        send = self.send
        pending = self.pending
        loop = asyncio.get_running_loop()
        while True:
            if not pending and self.close_code is None:
                self._wake = loop.create_future()
                await self._wake
            if pending:
                text = pending.popleft() if len(pending) == 1 else "\n".join(pending)
                pending.clear()
                self.pending_bytes = 0
                self.sending = True
                try:
                    await send({"type": "websocket.send", "text": text})
                except Exception:  # the socket is gone; the reader sees it too
                    self.closed = True
                    return
                finally:
                    self.sending = False
            if self.close_code is not None and not pending:
                await self._close()
                return

    async def _close(self) -> None:
        """Send the close frame; a client that neither reads it nor answers within
        ``close_timeout`` has its reader stopped, so a stuck socket holds nothing for long."""
        assert self.close_code is not None
        code = self.close_code
        reason = self._close_reason or protocol.REASONS[code]
        timeout = self.gateway.settings.close_timeout
        try:
            async with asyncio.timeout(timeout):
                await self.send({"type": "websocket.close", "code": int(code), "reason": reason})
        except Exception:  # includes TimeoutError: the client does not read
            _log.debug("close of %s failed", self.client)
        self.closed = True
        asyncio.get_running_loop().call_later(timeout, self._reap)

    def _reap(self) -> None:
        reader = self.reader
        if reader is not None and not reader.done():
            self.reaped = True
            reader.cancel()

    def answer(self, frame: bytes) -> None:
        self.push(frame.decode())

    # --- input ----------------------------------------------------------------------------

    async def serve(self, receive: Receive) -> None:
        """Read until the client goes or the session is closed."""
        settings = self.gateway.settings
        self.reader = asyncio.current_task()
        try:
            async with asyncio.timeout(settings.connect_timeout):
                while self.identity is None and self.close_code is None:
                    if not await self._read(receive):
                        return
        except TimeoutError:
            self.disconnect(Disconnect.STALE)
        while self.close_code is None:
            if not await self._read(receive):
                return
        # Closing: wait (bounded) for the client's close so the server does not linger.
        async with asyncio.timeout(settings.close_timeout):
            while (await receive())["type"] != "websocket.disconnect":
                pass

    async def _read(self, receive: Receive) -> bool:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.disconnect":
            self.closed = True
            return False
        if kind != "websocket.receive":
            return True
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        if len(data) > self.gateway.settings.max_message_bytes:
            self.disconnect(Disconnect.BAD_REQUEST, "message too large")
            return True
        try:
            commands = protocol.parse(data, max_commands=self.gateway.settings.max_commands)
        except BadFrame as exc:
            self.gateway.stats.bad_frames += 1
            self.disconnect(Disconnect.BAD_REQUEST, f"bad request: {exc}"[:120])
            return True
        for command in commands:
            if self.close_code is not None:
                break
            await self._dispatch(command)
        return True

    async def _dispatch(self, command: protocol.Command) -> None:
        method = command.method
        if method is None:  # pong
            self.pong_due = None
            return
        if self.identity is None and method != "connect":
            self.disconnect(Disconnect.BAD_REQUEST, "bad request: connect first")
            return
        try:
            if method == "connect":
                await self._connect(command)
            elif method == "subscribe":
                await self._subscribe(command)
            elif method == "unsubscribe":
                self._unsubscribe(command)
            elif method in ("publish", "presence", "presence_stats", "history", "rpc"):
                self.answer(protocol.error(command.id, ErrorCode.NOT_AVAILABLE))
            elif method == "send":
                return
            else:
                self.answer(protocol.error(command.id, ErrorCode.METHOD_NOT_FOUND))
        except (TypeError, ValueError) as exc:
            self.answer(protocol.error(command.id, ErrorCode.BAD_REQUEST, str(exc)[:200]))

    async def _connect(self, command: protocol.Command) -> None:
        if self.identity is not None:
            self.disconnect(Disconnect.BAD_REQUEST, "bad request: already connected")
            return
        token = command.params.get("token")
        try:
            identity = await self.gateway.verifier.verify(token if isinstance(token, str) else "")
        except TokenExpired:
            self.answer(protocol.error(command.id, ErrorCode.TOKEN_EXPIRED))
            return
        except TokenRejected as exc:
            _log.info("realtime connect refused: %s", exc)
            self.disconnect(Disconnect.INVALID_TOKEN)
            return
        if not self.gateway.admit(self, identity):
            self.disconnect(Disconnect.CONNECTION_LIMIT)
            return
        self.identity = identity
        settings = self.gateway.settings
        self.last_ping = time.monotonic()
        result: dict[str, Any] = {
            "client": self.client,
            "version": self.gateway.version,
            "ping": settings.ping_interval,
            "pong": True,
        }
        self.answer(protocol.reply(command.id, "connect", result))

    async def _subscribe(self, command: protocol.Command) -> None:
        identity = self.identity
        assert identity is not None
        params = command.params
        try:
            channel = channels.parse(params.get("channel"), org=identity.org)
        except channels.BadChannel as exc:
            self.answer(protocol.error(command.id, ErrorCode.UNKNOWN_CHANNEL, str(exc)[:200]))
            return
        if channel.public in self.subs:
            self.answer(protocol.error(command.id, ErrorCode.ALREADY_SUBSCRIBED))
            return
        if len(self.subs) >= self.gateway.settings.max_channels:
            self.answer(protocol.error(command.id, ErrorCode.LIMIT_EXCEEDED))
            return
        user_subs = self.gateway.subs_per_user
        if user_subs[identity.user] >= self.gateway.settings.max_subscriptions_per_user:
            self.answer(protocol.error(command.id, ErrorCode.LIMIT_EXCEEDED, "user limit"))
            return
        since = _since(params)
        verdict = await self.gateway.access.check(identity, channel)
        if verdict is not Verdict.ALLOWED:
            code = (
                ErrorCode.UNKNOWN_CHANNEL
                if verdict is Verdict.UNKNOWN
                else ErrorCode.PERMISSION_DENIED
            )
            self.answer(protocol.error(command.id, code))
            return
        if self.close_code is not None or channel.public in self.subs:
            return
        sub = Sub(channel)
        self.subs[channel.public] = sub
        user_subs[identity.user] += 1
        hub = self.gateway.hub
        hub.add(self, sub)
        try:
            if since is None:
                recovery = Recovery(await self.gateway.backplane.position(channel.key), True)
            else:
                recovery = await self.gateway.backplane.recover(channel.key, since)
        except BackplaneUnavailable:
            # Degraded: live publications still arrive (local ones), without a position.
            # When the backplane is back every subscriber is told to re-sync and recovers.
            self.answer(
                protocol.reply(command.id, "subscribe", {"was_recovering": since is not None})
            )
            hub.settle(self, sub, Position("", 0))
            return
        if self.subs.get(channel.public) is not sub:
            return  # unsubscribed meanwhile
        self.answer(_subscribed(command.id, recovery, since is not None))
        if since is not None:
            self.gateway.stats.recoveries += 1
            if not recovery.recovered:
                self.gateway.stats.unrecovered += 1
        hub.settle(self, sub, recovery.position)

    def _unsubscribe(self, command: protocol.Command) -> None:
        name = command.params.get("channel")
        sub = self.subs.pop(name, None) if isinstance(name, str) else None
        if sub is not None:
            self._detach(sub)
        self.answer(protocol.reply(command.id, "unsubscribe", {}))

    # --- server-side actions --------------------------------------------------------------

    def resync(self, sub: Sub) -> None:
        """Make the client resubscribe ``sub`` and recover what this gateway missed."""
        self.drop(sub, protocol.Unsubscribe.INSUFFICIENT, RESYNC)

    def drop(self, sub: Sub, code: protocol.Unsubscribe, reason: str) -> None:
        if self.subs.get(sub.channel.public) is sub:
            del self.subs[sub.channel.public]
            self._detach(sub)
            self.push(protocol.unsubscribe_push(sub.channel.public, code, reason).decode())

    def release(self) -> None:
        for sub in self.subs.values():
            self._detach(sub)
        self.subs.clear()
        self.closed = True

    def _detach(self, sub: Sub) -> None:
        self.gateway.hub.remove(self, sub)
        if self.identity is not None:
            counts = self.gateway.subs_per_user
            counts[self.identity.user] -= 1
            if counts[self.identity.user] <= 0:
                del counts[self.identity.user]


def _since(params: dict[str, Any]) -> Position | None:
    if params.get("recover") is not True:
        return None
    epoch, offset = params.get("epoch", ""), params.get("offset", 0)
    if not isinstance(epoch, str) or len(epoch) > 64:
        raise ValueError("epoch must be a string of at most 64 characters")
    if isinstance(offset, str) and offset.isdigit():  # protobuf-style JSON sends int64 as text
        offset = int(offset)
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < 2**63:
        raise ValueError("offset must be a non-negative integer")
    return Position(epoch, offset)


def _subscribed(cid: int, recovery: Recovery, recovering: bool) -> bytes:
    result: dict[str, Any] = {
        "recoverable": True,
        "positioned": True,
        "epoch": recovery.position.epoch,
        "offset": recovery.position.offset,
    }
    if recovering:
        result["was_recovering"] = True
        result["recovered"] = recovery.recovered
        if recovery.publications:
            result["publications"] = [
                orjson.Fragment(protocol.with_offset(body, offset))
                for offset, body in recovery.publications
            ]
    return protocol.reply(cid, "subscribe", result)
