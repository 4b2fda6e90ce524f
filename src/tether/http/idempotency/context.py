"""The idempotency record of the request being handled, for handlers that commit it themselves.

The middleware puts an :class:`IdempotencyContext` in a context variable (and in
``scope["state"]["tether.idempotency"]``). A handler that writes through its own database
session calls :func:`complete_in` before committing: with a transactional store (Postgres) the
completed record is then written in the handler's transaction, so the business change, its
outbox event and the idempotency record commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson

from tether.http.idempotency.records import IdempotencyStore, StoredResponse, TransactionalStore

STATE_KEY = "tether.idempotency"


@dataclass(slots=True)
class IdempotencyContext:
    store: IdempotencyStore
    key: str
    token: str
    record_ttl: float
    committed_in_transaction: bool = False


_current: ContextVar[IdempotencyContext | None] = ContextVar("tether_idempotency", default=None)


def current() -> IdempotencyContext | None:
    """The context of the request being handled, or ``None`` (no key, or no middleware)."""
    return _current.get()


def _encode(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    dump = getattr(body, "model_dump", None)  # pydantic models
    return orjson.dumps(dump(mode="json") if callable(dump) else body)


async def complete_in(
    session: Any,
    *,
    status_code: int = 200,
    body: Any = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    media_type: str = "application/json",
) -> bool:
    """Complete the current record inside ``session``'s transaction, declaring the response.

    The declared response is what a retry gets if this process dies between the commit and the
    end of the response; otherwise the middleware replaces it with the exact bytes sent.
    Returns ``False`` when there is nothing to do (no key) or the store is not transactional.
    Raises ``LeaseLostError`` when our lease was taken over: let it roll the transaction back.
    """
    ctx = current()
    if ctx is None or not isinstance(ctx.store, TransactionalStore):
        return False
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs]
    raw_headers = ((b"content-type", media_type.encode()), *extra)
    response = StoredResponse(status_code, raw_headers, _encode(body))
    await ctx.store.complete_in(session, ctx.key, ctx.token, response, ctx.record_ttl)
    ctx.committed_in_transaction = True
    return True
