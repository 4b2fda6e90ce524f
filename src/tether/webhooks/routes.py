"""HTTP routes for webhook endpoints and the delivery log, mountable in a FastAPI app.

    app.include_router(webhooks_router(store, log), prefix="/webhooks")
    install(app, authz, user=..., org=OrgFrom.tenant())

Every route needs a capability (``webhooks:read`` or ``webhooks:manage``, see :class:`Cap`;
add them to the app's registry) and works in the caller's tenant
(:func:`tether.http.tenancy.current_tenant`): ids of another tenant's endpoints or
deliveries answer 404, exactly like ids that do not exist. A secret is shown once, in the
answer that creates or rotates it; everywhere else secrets appear as fingerprints.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from tether.authz.fastapi import require
from tether.core.errors import NotFoundError
from tether.http.tenancy import current_tenant
from tether.webhooks.deliveries import DeliveryLog, delivery_public
from tether.webhooks.model import EndpointSettings, Priority, WebhookConfigError
from tether.webhooks.store import EndpointStore


class Cap(StrEnum):
    READ = "webhooks:read"
    MANAGE = "webhooks:manage"


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048)
    filters: list[str] = Field(default_factory=lambda: ["*"], max_length=100)
    description: str = Field(default="", max_length=1000)
    enabled: bool = True
    priority: Priority = Priority.MEDIUM
    rate_limit: float | None = None
    concurrency: int = 10
    headers: dict[str, str] = Field(default_factory=dict)


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2048)
    filters: list[str] | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    enabled: bool | None = None
    priority: Priority | None = None
    rate_limit: float | None = None
    concurrency: int | None = None
    headers: dict[str, str] | None = None


class RecoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime


def _refused(exc: WebhookConfigError) -> HTTPException:
    return HTTPException(status_code=422, detail=str(exc))


def _missing(exc: NotFoundError) -> HTTPException:
    return HTTPException(status_code=404, detail=str(exc))


def webhooks_router(  # noqa: PLR0915 (one nested function per route)
    store: EndpointStore, log: DeliveryLog
) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    read = [Depends(require(Cap.READ))]
    manage = [Depends(require(Cap.MANAGE))]
    tenant_dep = Depends(current_tenant)

    @router.get("/endpoints", dependencies=read)
    async def list_endpoints(
        tenant: str = tenant_dep, limit: int = Query(100, ge=1, le=1000), offset: int = 0
    ) -> list[dict[str, Any]]:
        return [e.public() for e in await store.list(tenant, limit=limit, offset=max(offset, 0))]

    @router.post("/endpoints", status_code=201, dependencies=manage)
    async def create_endpoint(body: EndpointIn, tenant: str = tenant_dep) -> dict[str, Any]:
        try:
            data = body.model_dump()
            settings = EndpointSettings(**{**data, "filters": tuple(data["filters"])})
            endpoint = await store.create(tenant, settings)
        except WebhookConfigError as exc:
            raise _refused(exc) from None
        return {**endpoint.public(), "secret": str(endpoint.secrets.current)}

    @router.get("/endpoints/{endpoint_id}", dependencies=read)
    async def get_endpoint(endpoint_id: uuid.UUID, tenant: str = tenant_dep) -> dict[str, Any]:
        try:
            return (await store.get(tenant, endpoint_id)).public()
        except NotFoundError as exc:
            raise _missing(exc) from None

    @router.patch("/endpoints/{endpoint_id}", dependencies=manage)
    async def update_endpoint(
        endpoint_id: uuid.UUID, body: EndpointPatch, tenant: str = tenant_dep
    ) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        try:
            return (await store.update(tenant, endpoint_id, **changes)).public()
        except NotFoundError as exc:
            raise _missing(exc) from None
        except WebhookConfigError as exc:
            raise _refused(exc) from None

    @router.delete("/endpoints/{endpoint_id}", status_code=204, dependencies=manage)
    async def delete_endpoint(endpoint_id: uuid.UUID, tenant: str = tenant_dep) -> None:
        try:
            await store.delete(tenant, endpoint_id)
        except NotFoundError as exc:
            raise _missing(exc) from None

    @router.post("/endpoints/{endpoint_id}/rotate", dependencies=manage)
    async def rotate_secret(endpoint_id: uuid.UUID, tenant: str = tenant_dep) -> dict[str, Any]:
        try:
            endpoint = await store.rotate_secret(tenant, endpoint_id)
        except NotFoundError as exc:
            raise _missing(exc) from None
        return {**endpoint.public(), "secret": str(endpoint.secrets.current)}

    @router.post("/endpoints/{endpoint_id}/recover", dependencies=manage)
    async def recover(
        endpoint_id: uuid.UUID, body: RecoverIn, tenant: str = tenant_dep
    ) -> dict[str, int]:
        try:
            await store.get(tenant, endpoint_id)
            return {"replayed": await log.recover(tenant, endpoint_id, body.since)}
        except NotFoundError as exc:
            raise _missing(exc) from None
        except WebhookConfigError as exc:
            raise _refused(exc) from None

    @router.get("/deliveries", dependencies=read)
    async def list_deliveries(  # noqa: PLR0917 (one parameter per query field)
        tenant: str = tenant_dep,
        endpoint_id: uuid.UUID | None = None,
        event_id: uuid.UUID | None = None,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> list[dict[str, Any]]:
        try:
            items = await log.deliveries(
                tenant, endpoint_id=endpoint_id, event_id=event_id, state=state, since=since,
                until=until, limit=limit, offset=offset,
            )  # fmt: skip
        except WebhookConfigError as exc:
            raise _refused(exc) from None
        return [delivery_public(i) for i in items]

    @router.get("/deliveries/{delivery_id}", dependencies=read)
    async def get_delivery(delivery_id: uuid.UUID, tenant: str = tenant_dep) -> dict[str, Any]:
        try:
            item = await log.delivery(tenant, delivery_id)
        except NotFoundError as exc:
            raise _missing(exc) from None
        attempts = await log.attempts(tenant, delivery_id=delivery_id, limit=1000)
        return {**delivery_public(item), "attempts": [a.public() for a in attempts]}

    @router.post("/deliveries/{delivery_id}/replay", status_code=202, dependencies=manage)
    async def replay(delivery_id: uuid.UUID, tenant: str = tenant_dep) -> dict[str, str]:
        try:
            await log.replay(tenant, delivery_id)
        except NotFoundError as exc:
            raise _missing(exc) from None
        except WebhookConfigError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        return {"replayed": str(delivery_id)}

    @router.get("/attempts", dependencies=read)
    async def list_attempts(  # noqa: PLR0917 (one parameter per query field)
        tenant: str = tenant_dep,
        endpoint_id: uuid.UUID | None = None,
        event_id: uuid.UUID | None = None,
        delivery_id: uuid.UUID | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        try:
            found = await log.attempts(
                tenant, endpoint_id=endpoint_id, event_id=event_id, delivery_id=delivery_id,
                outcome=outcome, since=since, until=until, limit=limit,
            )  # fmt: skip
        except WebhookConfigError as exc:
            raise _refused(exc) from None
        return [a.public() for a in found]

    return router
