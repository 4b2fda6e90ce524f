"""The "consumer dead letters" pages: each configured consumer's first dead letters on its
broker, and replay (one, selected, or all) through a confirmation page with the count.

Actions follow the dead-letter pages' rules: POST with the session's CSRF token, ``ops:replay``
decided and written to the audit log at the confirmation (when refused) and at the run. The
form names the consumer by its position in the configuration and by its label, so a
confirmation shown before a restart with another configuration cannot act on another one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tether.dashboard import broker_dlq
from tether.dashboard.auth import OpsCap, csrf_ok
from tether.dashboard.broker_dlq import BrokerFailed, ConsumerDlq
from tether.dashboard.kinds import BadFilter

if TYPE_CHECKING:
    from tether.dashboard.app import Dashboard

MAX_LIMIT = 500
POLL_AT_LEAST_S = 15.0
"""The live list refreshes no more often than this, whatever the dashboard's refresh: each
refresh connects to every consumer's broker, and RabbitMQ's listing takes the dead letters it
shows and puts them back (a replay running meanwhile elsewhere skips those)."""
MAX_IDS = 500
MAX_ID_LENGTH = 200


def _limit(request: Request, default: int) -> int:
    text = request.query_params.get("limit")
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadFilter(f"limit: a number of dead letters 1..{MAX_LIMIT}, got {text[:20]!r}")
    return int(text)


async def _listings(dash: Dashboard, request: Request) -> dict[str, Any]:
    limit = _limit(request, dash.settings.page_size)
    listings = await broker_dlq.listings(dash.settings.consumer_dlqs, limit)
    here = f"limit={limit}" if request.query_params.get("limit") else ""
    every = max(dash.settings.refresh_seconds, POLL_AT_LEAST_S)
    return {"listings": listings, "limit": limit, "here": here, "every": every}


async def page(dash: Dashboard, request: Request) -> Response:
    return dash.page(request, "consumers.html", await _listings(dash, request))


async def part(dash: Dashboard, request: Request) -> Response:
    """The listings alone, which the page polls."""
    return dash.page(request, "_consumers.html", await _listings(dash, request))


class _Action:
    """A checked replay form: which consumer, and which dead letters (None: all)."""

    def __init__(self, index: int, dlq: ConsumerDlq, ids: list[str] | None) -> None:
        self.index = index
        self.dlq = dlq
        self.ids = ids

    def describe(self, step: str) -> dict[str, Any]:
        d: dict[str, Any] = {"action": "replay", "step": step, "kind": "consumer"}
        d |= {"broker": self.dlq.broker.value, "url": self.dlq.shown_url}
        d |= {"source": self.dlq.source, "consumer": self.dlq.consumer}
        if self.ids is not None:
            d["ids"] = self.ids[:20] + (["..."] if len(self.ids) > 20 else [])
        return d


async def _action(dash: Dashboard, request: Request) -> tuple[_Action, FormData]:
    from tether.dashboard.app import Refused

    form = await request.form()
    if not csrf_ok(request, form):
        raise Refused(403, "The form expired or came from another site: reload the page.")
    dlqs = dash.settings.consumer_dlqs
    text = str(form.get("source") or "")
    if not text.isdigit() or int(text) >= len(dlqs):
        raise BadFilter(f"source: not a consumer this dashboard shows ({text[:20]!r})")
    index = int(text)
    dlq = dlqs[index]
    if str(form.get("label") or dlq.label) != dlq.label:
        raise BadFilter("source: the consumers shown changed since this page: reload it")
    scope = str(form.get("scope") or "")
    if scope not in ("selected", "all"):
        raise BadFilter("scope: use selected or all")
    ids = None
    if scope == "selected":
        ids = list(dict.fromkeys(str(v) for v in form.getlist("id")))
        if not ids:
            raise BadFilter("id: select at least one dead letter")
        if len(ids) > MAX_IDS:
            raise BadFilter(f"id: at most {MAX_IDS} at once (or replay all)")
        for i in ids:
            if not i or len(i) > MAX_ID_LENGTH or not i.isprintable():
                raise BadFilter(f"id {i[:40]!r}: not a dead-letter id")
    return _Action(index, dlq, ids), form


async def confirm(dash: Dashboard, request: Request) -> Response:
    from tether.dashboard.app import Refused

    act, _ = await _action(dash, request)
    user = request.state.user
    if not request.state.can["replay"]:
        await dash.guard.decide_action(user, OpsCap.REPLAY, act.describe("confirm"))
        raise Refused(403, f"Missing capability: {OpsCap.REPLAY.value}")
    if act.ids is not None:
        count, exact = len(act.ids), True
    else:
        try:
            count, exact = await broker_dlq.count(act.dlq)
        except BrokerFailed as exc:
            raise Refused(503, str(exc)) from None
    data = {"act": act, "count": count, "exact": exact, "cap": broker_dlq.COUNT_CAP}
    return dash.page(request, "consumer_confirm.html", data)


async def run(dash: Dashboard, request: Request) -> Response:
    from tether.dashboard.app import Refused

    act, _ = await _action(dash, request)
    user = request.state.user
    detail = act.describe("run")
    decision = await dash.guard.decide_action(user, OpsCap.REPLAY, detail)
    if not decision.allowed:
        raise Refused(403, f"Missing capability: {OpsCap.REPLAY.value}")
    try:
        n = await broker_dlq.replay(act.dlq, act.ids)
    except BrokerFailed as exc:
        raise Refused(503, f"{exc} (dead letters already replayed stay replayed)") from None
    dash.guard.done(user, OpsCap.REPLAY, detail, n)
    flash = f"Replayed {n} dead letter{'s' if n != 1 else ''} of {act.dlq.label}."
    if act.ids is not None and n < len(act.ids):
        flash += f" {len(act.ids) - n} were no longer there (replayed already?)."
    request.session["flash"] = flash
    return RedirectResponse(request.url_for("consumers"), status_code=303)


def routes(dash: Dashboard) -> list[Route]:
    async def show(request: Request) -> Response:
        return await page(dash, request)

    async def show_part(request: Request) -> Response:
        return await part(dash, request)

    async def confirm_endpoint(request: Request) -> Response:
        return await confirm(dash, request)

    async def run_endpoint(request: Request) -> Response:
        return await run(dash, request)

    v = dash.viewer
    return [
        Route("/consumers", v(show), name="consumers"),
        Route("/partials/consumers", v(show_part), name="consumers_part"),
        Route("/consumers/confirm", v(confirm_endpoint), methods=["POST"], name="consumer_confirm"),
        Route("/consumers/run", v(run_endpoint), methods=["POST"], name="consumer_run"),
    ]
