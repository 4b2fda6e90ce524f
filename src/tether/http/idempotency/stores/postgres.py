"""Postgres idempotency store, on the application's SQLAlchemy async engine.

``begin``/``complete``/``release`` run in short transactions of their own. ``complete_in``
writes through the *handler's* session instead, so the record commits with the business change
and its outbox event. The lease token fences every write: a worker whose lease expired and was
taken over updates no row, gets ``LeaseLostError`` and its transaction rolls back.

With ``tenancy=True`` (PostgreSQL row-level security, docs/tenancy.md) every transaction is
scoped to the record's tenant first, and a request without a valid tenant is refused before
anything is written. ``complete`` and ``release`` only get the key and the lease token, so the
token carries the tenant: ``"<tenant> <token>"`` (a valid tenant id has no space).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from tether.core.errors import LeaseLostError, StoreError
from tether.http.idempotency.records import Begin, Outcome, StoredResponse, new_token
from tether.store import sqlfile
from tether.tenancy import check_tenant_id, tenant_scope

_Q = {n: text(q.sql) for n, q in sqlfile.queries("tether.http.idempotency", "postgres").items()}
_ERRORS = (OperationalError, DBAPIError, OSError)


class PostgresIdempotencyStore:
    def __init__(self, engine: AsyncEngine, *, tenancy: bool = False) -> None:
        self._engine = engine
        self._tenancy = tenancy

    async def _scope(self, conn: AsyncSession | AsyncConnection, token: str) -> None:
        if self._tenancy:
            tenant, _, _ = token.rpartition(" ")
            await tenant_scope(conn, tenant)

    async def begin(
        self, key: str, fingerprint: str, tenant: str, lease_ttl: float, record_ttl: float
    ) -> Begin:
        token = new_token()
        if self._tenancy:
            token = f"{check_tenant_id(tenant)} {token}"
        params = {
            "scope_key": key,
            "tenant_id": tenant,
            "fingerprint": fingerprint,
            "token": token,
            "lease_ttl": lease_ttl,
        }
        try:
            async with self._engine.begin() as conn:
                await self._scope(conn, token)
                for _ in range(3):  # the row may expire between the upsert and the read
                    if (await conn.execute(_Q["begin"], params)).first() is not None:
                        return Begin(Outcome.ACQUIRED, token=token)
                    row = (await conn.execute(_Q["existing"], {"scope_key": key})).first()
                    if row is not None:
                        return _answer(row, fingerprint)
        except _ERRORS as exc:
            raise StoreError(f"postgres idempotency store: {exc}") from exc
        raise StoreError("postgres idempotency store: the record kept changing; retry")

    async def complete(
        self, key: str, token: str, response: StoredResponse, record_ttl: float
    ) -> bool:
        try:
            async with self._engine.begin() as conn:
                await self._scope(conn, token)
                return await _complete(conn, key, token, response, record_ttl)
        except _ERRORS as exc:
            raise StoreError(f"postgres idempotency store: {exc}") from exc

    async def complete_in(
        self,
        session: AsyncSession | AsyncConnection,
        key: str,
        token: str,
        response: StoredResponse,
        record_ttl: float,
    ) -> None:
        await self._scope(session, token)  # the same tenant as the handler's scope, if it has one
        if not await _complete(session, key, token, response, record_ttl):
            raise LeaseLostError(
                "the idempotency lease expired and was taken over; roll back (raise lease_ttl "
                "above the handler's longest run)"
            )

    async def release(self, key: str, token: str) -> None:
        try:
            async with self._engine.begin() as conn:
                await self._scope(conn, token)
                await conn.execute(_Q["release"], {"scope_key": key, "token": token})
        except _ERRORS as exc:
            raise StoreError(f"postgres idempotency store: {exc}") from exc

    async def purge_expired(self) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(_Q["purge_expired"])
            return int(result.rowcount)


async def _complete(
    conn: AsyncSession | AsyncConnection,
    key: str,
    token: str,
    response: StoredResponse,
    record_ttl: float,
) -> bool:
    params = {
        "scope_key": key,
        "token": token,
        "status_code": response.status,
        "headers": response.headers_json().decode(),
        "body": response.body,
        "record_ttl": record_ttl,
    }
    return (await conn.execute(_Q["complete"], params)).first() is not None


def _answer(row: Any, fingerprint: str) -> Begin:
    if row.fingerprint != fingerprint:
        return Begin(Outcome.MISMATCH)
    if row.state == "in_flight":
        return Begin(Outcome.IN_FLIGHT, retry_after=max(float(row.lease_left), 0.0))
    headers = StoredResponse.headers_from_json(_json_text(row.headers))
    response = StoredResponse(row.status_code, headers, bytes(row.body))
    return Begin(Outcome.COMPLETED, response=response)


def _json_text(value: Any) -> bytes | str:
    # SQLAlchemy text() hands jsonb back already decoded by the driver.
    if isinstance(value, bytes | str):
        return value
    import orjson

    return orjson.dumps(value)
