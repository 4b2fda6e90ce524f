"""A real webhook receiver on loopback: uvicorn serving a bare ASGI app in the test's loop.

Every request is verified with the ``standardwebhooks`` package (the library receivers use)
against the secrets the receiver holds; ``respond`` chooses the answer per request. A request
that does not verify is recorded in ``forged`` and answered 401.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.http_receiver import LoopbackServer, header_dict, read_body


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


class Receiver:
    def __init__(
        self, secrets: Sequence[str] = (), respond: Callable[[Request], Reply] | None = None
    ):
        self.secrets = list(secrets)  # whsec_... strings; any one verifying is enough
        self.respond = respond or (lambda _: Reply())
        self.verified: list[Request] = []  # verified and answered 2xx
        self.answered: list[tuple[Request, int]] = []  # every verified request and its status
        self.forged: list[Request] = []
        self.changed = asyncio.Condition()
        self._server = LoopbackServer(self._app)
        self.port = self._server.port

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def check(self, request: Request) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(request.body, request.headers)
                return True
            except WebhookVerificationError:
                continue
        return False

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(predicate)

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if body is None:
            return  # the sender died mid-request (the chaos test kills it): nothing arrived
        request = Request(scope["path"], header_dict(scope), body)
        verified = self.check(request)
        reply = self.respond(request) if verified else Reply(401, body=b"bad signature")
        if asyncio.iscoroutine(reply):
            reply = await reply
        async with self.changed:
            if not verified:
                self.forged.append(request)
            else:
                self.answered.append((request, reply.status))
                if 200 <= reply.status < 300:
                    self.verified.append(request)
            self.changed.notify_all()
        raw = [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": raw})
        await send({"type": "http.response.body", "body": reply.body})

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()


@asynccontextmanager
async def receiving(
    secrets: Sequence[str] = (), respond: Callable[[Request], Any] | None = None
) -> AsyncIterator[Receiver]:
    receiver = Receiver(secrets, respond)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()
