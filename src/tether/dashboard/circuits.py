"""Webhook endpoints' live circuit state, read from the breaker store the dispatchers share.

The breaker of each endpoint lives in its dispatchers (:mod:`tether.webhooks.gates`), under
:func:`~tether.webhooks.gates.breaker_name`. When they share a
:class:`tether.guard.RedisBreakerStore` (``tether webhooks run --redis-url``) the dashboard,
given the same Redis, reads those circuits: closed, open until when, half-open, and the
failures of the current window, a page of endpoints in one round trip and without changing
them. Without a shared store the pages show what the delivery table records, and say so.

An operator (``ops:replay``) may reset an open or half-open circuit: its record is deleted, so
every dispatcher sees it closed at its next delivery. The action is a CSRF-checked POST,
decided and audit-logged like the dead-letter actions.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tether.core.errors import ConfigError
from tether.core.redact import mask_secrets
from tether.dashboard.auth import OpsCap, csrf_ok
from tether.dashboard.kinds import parse_uuid
from tether.guard import BreakerInspector, BreakerPolicy, CircuitView, view_of
from tether.webhooks.gates import breaker_name

if TYPE_CHECKING:
    from tether.dashboard.app import Dashboard

log = logging.getLogger("tether.dashboard")


@dataclass(frozen=True, slots=True)
class LiveCircuit:
    """One endpoint's circuit as a page shows it."""

    view: CircuitView

    @property
    def state(self) -> str:
        return self.view.state

    @property
    def label(self) -> str:
        return "half-open" if self.view.state == "half_open" else self.view.state

    @property
    def open_until(self) -> datetime | None:
        until = self.view.open_until
        return None if until is None else datetime.fromtimestamp(until, UTC)

    @property
    def resettable(self) -> bool:
        return self.view.state != "closed"


@dataclass(frozen=True, slots=True)
class Circuits:
    """The circuits of a page of endpoints, or why they could not be read."""

    configured: bool
    """False without a shared breaker store: the page shows the table's state and says so."""
    live: dict[uuid.UUID, LiveCircuit] = field(default_factory=dict)
    error: str | None = None
    where: str = ""
    """The store, for the page's note (a Redis URL with its password masked)."""

    def of(self, endpoint_id: uuid.UUID) -> LiveCircuit | None:
        return self.live.get(endpoint_id)


def check_store(store: Any) -> None:
    """A ConfigError unless ``store`` is None or can be read from outside (BreakerInspector)."""
    if store is not None and not isinstance(store, BreakerInspector):
        raise ConfigError(
            f"dashboard breaker_store: {type(store).__name__} cannot be read from outside "
            "(needs records() and reset(), as RedisBreakerStore and MemoryBreakerStore have)"
        )


def _where(store: Any) -> str:
    """Where a store keeps its circuits, for the page (RedisBreakerStore.where)."""
    return str(getattr(store, "where", None) or type(store).__name__)


@functools.cache  # asked on every page refresh; the answer never changes in a process
def _unreadable() -> tuple[type[BaseException], ...]:
    """What a store that cannot be read raises (Redis down or slow): shown, never a 500."""
    try:
        from redis.exceptions import RedisError
    except ImportError:  # no redis extra: the store is not a Redis one
        return (OSError, TimeoutError)
    return (RedisError, OSError, TimeoutError)


async def read(
    store: Any,
    policy: BreakerPolicy,
    endpoint_ids: Sequence[uuid.UUID],
    clock: Callable[[], float] = time.time,
) -> Circuits:
    """The live circuits of ``endpoint_ids`` from ``store`` (None: not configured)."""
    if store is None:
        return Circuits(configured=False)
    where = _where(store)
    names = {breaker_name(i): i for i in endpoint_ids}
    try:
        records = await store.records(list(names))
    except _unreadable() as exc:
        log.warning("dashboard: breaker store %s unreadable: %r", where, exc)
        message = f"The breaker store ({where}) did not answer: {type(exc).__name__}: {exc}"
        return Circuits(configured=True, error=mask_secrets(message), where=where)
    now = clock()
    live = {names[n]: LiveCircuit(view_of(r, policy, now)) for n, r in records.items()}
    return Circuits(configured=True, live=live, where=where)


async def for_page(dash: Dashboard, endpoint_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    """The ``circuits`` a webhook page's template shows next to its endpoints."""
    s = dash.settings
    policy = s.breaker_policy or BreakerPolicy()
    return {"circuits": await read(s.breaker_store, policy, endpoint_ids)}


async def reset(dash: Dashboard, request: Request) -> Response:
    """POST: forget an endpoint's circuit (ops:replay), then back to the endpoint's page."""
    from tether.dashboard.app import Refused

    endpoint_id = parse_uuid("id", request.path_params["id"])
    form = await request.form()
    if not csrf_ok(request, form):
        raise Refused(403, "The form expired or came from another site: reload the page.")
    user = request.state.user
    detail = {"action": "reset-circuit", "step": "run", "endpoint": str(endpoint_id)}
    decision = await dash.guard.decide_action(user, OpsCap.REPLAY, detail)
    if not decision.allowed:
        raise Refused(403, f"Missing capability: {OpsCap.REPLAY.value}")
    store = dash.settings.breaker_store
    if store is None:
        raise Refused(409, "No shared breaker store is configured: there is no circuit to reset.")
    try:
        found = await store.reset(breaker_name(endpoint_id))
    except _unreadable() as exc:
        message = f"The breaker store ({_where(store)}) did not answer: {exc}; nothing was reset."
        raise Refused(503, mask_secrets(message)) from None
    dash.guard.done(user, OpsCap.REPLAY, detail, int(found))
    request.session["flash"] = (
        "Circuit reset: closed, no failures counted."
        if found
        else "The circuit was already closed with no failures counted."
    )
    target = request.url_for("endpoint", id=str(endpoint_id))
    return RedirectResponse(target, status_code=303)


def routes(dash: Dashboard) -> list[Route]:
    async def reset_endpoint(request: Request) -> Response:
        return await reset(dash, request)

    return [
        Route(
            "/webhooks/{id}/circuit/reset",
            dash.viewer(reset_endpoint),
            methods=["POST"],
            name="circuit_reset",
        )
    ]
