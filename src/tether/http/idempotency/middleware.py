"""Idempotency-Key middleware (draft-ietf-httpapi-idempotency-key-header, Stripe's behaviour)."""

from __future__ import annotations

import logging
import math
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.core.errors import StoreError
from tether.http import problem
from tether.http.idempotency import context
from tether.http.idempotency.fingerprint import fingerprint, scope_key
from tether.http.idempotency.keys import InvalidKeyError, parse_key
from tether.http.idempotency.policy import IdempotencyPolicy, Mode
from tether.http.idempotency.records import Begin, IdempotencyStore, Outcome, StoredResponse

log = logging.getLogger("tether.http.idempotency")
_REPLAYED = (b"idempotent-replayed", b"true")
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})


class _BodyTooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class IdempotencyMiddleware:
    def __init__(
        self, app: ASGIApp, store: IdempotencyStore, policy: IdempotencyPolicy | None = None
    ) -> None:
        self.app = app
        self.store = store
        self.policy = policy or IdempotencyPolicy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        mode, route = self.policy.mode_for(scope["method"], scope["path"])
        if mode is Mode.OFF:
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope["headers"] if k == self.policy.header]
        if not values:
            if mode is Mode.REQUIRED:
                await _bad_key(send, "this operation requires an Idempotency-Key header")
                return
            await self.app(scope, receive, send)
            return
        if len(values) > 1:
            await _bad_key(send, "send exactly one Idempotency-Key header")
            return
        try:
            key = parse_key(values[0])
        except InvalidKeyError as exc:
            await _bad_key(send, str(exc))
            return
        await _Responder(self, scope, receive, send, key=key, route=route).run()


async def _bad_key(send: Send, detail: str) -> None:
    await problem.send_problem(send, 400, "idempotency-key-invalid", "Bad Idempotency-Key", detail)


class _Responder:
    """The state of one keyed request: buffered body, lease, captured response.

    The common path (body in one message, lease acquired, response stored) is kept to few
    calls on purpose: it runs on every keyed request.
    """

    __slots__ = (
        "body", "body_size", "buffered", "finished", "forced", "headers", "key", "mw",
        "policy", "receive", "route", "scope", "send", "status", "store",
    )  # fmt: skip

    def __init__(
        self,
        mw: IdempotencyMiddleware,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        key: str,
        route: str,
    ) -> None:
        self.mw, self.policy, self.store = mw, mw.policy, mw.store
        self.scope, self.receive, self.send = scope, receive, send
        self.key, self.route = key, route
        self.buffered: deque[Message] = deque()
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.body_size = 0
        self.finished = False
        self.forced = False  # store whatever store_status says (a recorded failure)

    async def run(self) -> None:
        policy, scope = self.policy, self.scope
        try:
            fingerprint = await self._read_body()
        except _BodyTooLarge:
            await problem.send_problem(
                self.send,
                413,
                "idempotency-body-too-large",
                "Request body too large",
                f"keyed requests are buffered up to {policy.max_body_bytes} bytes",
            )
            return
        except _Disconnected:
            return
        tenant, principal = policy.identity(scope)
        record = scope_key(tenant, principal, scope["method"], self.route, self.key)
        try:
            begin = await self.store.begin(
                record, fingerprint, tenant, policy.lease_ttl, policy.record_ttl
            )
        except StoreError as exc:
            log.warning("idempotency store unavailable: %s", exc)
            await problem.send_problem(
                self.send,
                503,
                "idempotency-store-unavailable",
                "Service Unavailable",
                "the idempotency store cannot be reached; retry with the same key",
                headers=[(b"retry-after", b"1")],
            )
            return
        if begin.outcome is Outcome.ACQUIRED:
            await self._execute(record, begin.token)
        else:
            await self._refuse(begin)

    async def _refuse(self, begin: Begin) -> None:
        if begin.outcome is Outcome.MISMATCH:
            await problem.send_problem(
                self.send,
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this key was already used with a different request; use a new key",
            )
        elif begin.outcome is Outcome.IN_FLIGHT:
            retry = str(max(1, math.ceil(begin.retry_after))).encode()
            await problem.send_problem(
                self.send,
                409,
                "idempotency-in-flight",
                "Request in progress",
                "a request with this key is still being processed; retry later",
                headers=[(b"retry-after", retry)],
            )
        else:
            assert begin.response is not None  # stores always attach it to COMPLETED
            await self._replay(begin.response)

    async def _replay(self, response: StoredResponse) -> None:
        # The body is replayed whole: framing headers of the original response do not apply,
        # and headers of the moment (rate limits) are never replayed, even from old records.
        dropped = _FRAMING | self.policy.unstored_headers
        headers = [h for h in response.headers if h[0] not in dropped]
        headers += [(b"content-length", str(len(response.body)).encode()), _REPLAYED]
        start = {"type": "http.response.start", "status": response.status, "headers": headers}
        await self.send(start)
        await self.send({"type": "http.response.body", "body": response.body})

    async def _read_body(self) -> str:
        message = await self.receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body = message.get("body", b"")  # the usual case: the whole body in one message
            if len(body) > self.policy.max_body_bytes:
                raise _BodyTooLarge
            self.buffered.append(message)
            return fingerprint(self.scope, self.policy.fingerprint_headers, body)
        chunks: list[bytes] = []
        size = 0
        while True:
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.policy.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            self.buffered.append(message)
            if not message.get("more_body", False):
                body = b"".join(chunks)
                return fingerprint(self.scope, self.policy.fingerprint_headers, body)
            message = await self.receive()

    async def _replay_receive(self) -> Message:
        # The app sees exactly the messages we read, chunk by chunk, then the live channel.
        if self.buffered:
            return self.buffered.popleft()
        return await self.receive()

    async def _capture_send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            unstored = self.policy.unstored_headers
            self.headers = [(k, v) for k, v in message.get("headers", ()) if k not in unstored]
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self.body_size += len(chunk)
            if self.body_size <= self.policy.max_response_bytes:
                self.body.append(chunk)
            self.finished = not message.get("more_body", False)
        await self.send(message)

    async def _execute(self, record: str, token: str) -> None:
        ctx = context.IdempotencyContext(self.store, record, token, self.policy.record_ttl)
        state = self.scope.get("state")
        if state is None:
            state = self.scope["state"] = {}
        state[context.STATE_KEY] = ctx
        reset = context._current.set(ctx)
        try:
            await self.mw.app(self.scope, self._replay_receive, self._capture_send)
        except Exception:
            if not self.policy.retry_after_exception:
                # Starlette's error middleware may already have sent its 500: keep that one.
                if self.finished:
                    self.forced = True
                else:
                    self._record_failure()
            await self._settle(ctx, allow_store=self.finished)
            raise
        except BaseException:  # cancelled: the client is gone; leave the key retryable
            await self._settle(ctx, allow_store=self.finished)
            raise
        finally:
            context._current.reset(reset)
        await self._settle(ctx, allow_store=True)

    def _record_failure(self) -> None:
        """Stand a 500 problem in for the response the handler never sent."""
        body = problem.problem_body(
            500, "internal-error", "Internal Server Error", "the request failed; do not retry"
        )
        self.status, self.finished, self.body_size, self.forced = 500, True, len(body), True
        self.headers, self.body = [(b"content-type", problem.PROBLEM_CONTENT_TYPE)], [body]

    async def _settle(self, ctx: context.IdempotencyContext, allow_store: bool) -> None:
        storable = (
            allow_store
            and self.finished
            and self.body_size <= self.policy.max_response_bytes
            and (self.forced or self.policy.store_status(self.status))
        )
        try:
            if storable:
                response = StoredResponse(self.status, tuple(self.headers), b"".join(self.body))
                if not await self.store.complete(ctx.key, ctx.token, response, ctx.record_ttl):
                    log.warning("idempotency lease lost before completion; response not stored")
            else:
                # A record the handler committed in its own transaction is no longer in flight,
                # so release leaves it alone; one whose transaction rolled back is freed.
                await self.store.release(ctx.key, ctx.token)
        except StoreError as exc:
            # The lease expires on its own; the client already has its response.
            log.warning("idempotency store failed while settling a request: %s", exc)
