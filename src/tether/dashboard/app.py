"""The dashboard as a Starlette app: ``create_dashboard(settings, authz)``.

Serve it alone (``tether dashboard``) or mount it in a FastAPI/Starlette app::

    app.mount("/ops", create_dashboard(settings, authz))

Pages are rendered on the server (Jinja2); htmx refreshes their live parts and uPlot draws the
chart, both shipped in the package (``static/``), so there is no build step.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import asyncpg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tether.authz import Authz
from tether.core.errors import ConfigError
from tether.dashboard import actions, broker_dlq, broker_dlq_pages, circuits, history, queries
from tether.dashboard.auth import Guard, OpsCap, TokenUsers, csrf_ok, csrf_token, user_of
from tether.dashboard.history_cache import HistoryCache
from tether.dashboard.kinds import KINDS, BadFilter, DeadFilter, kind_of, parse_filter, parse_uuid
from tether.dashboard.realtime_view import realtime_snapshot
from tether.dashboard.runners_view import rate_now, runner_rows
from tether.dashboard.series import PendingAges
from tether.http.ratelimit import Algorithm, Limit, MemoryRateLimitStore
from tether.ops.runners import PostgresRunnerRegistry, RunnerRegistry

_HERE = resources.files(__name__.rsplit(".", 1)[0])
LOGIN_LIMIT = Limit("dashboard-login", 10, 300.0)  # attempts per client address, 5 minutes
_ACTIONS = {"replay": OpsCap.REPLAY, "purge": OpsCap.PURGE}
_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    """``secret_key`` signs the session cookie (at least 32 characters); ``users`` are the
    login tokens (None: only an outer app's authentication identifies users); ``org`` is the
    organization capabilities are checked in (None: grants to every org)."""

    dsn: str
    secret_key: str
    users: TokenUsers | None = None
    org: str | None = None
    page_size: int = 50
    refresh_seconds: float = 5.0
    https_only: bool = False
    session_max_age: int = 8 * 3600
    gateway: Any = None  # a running tether.realtime Gateway in this process, if any
    breaker_store: Any = None  # the webhook dispatchers' shared breaker store (RedisBreakerStore)
    breaker_policy: Any = None  # their tether.guard.BreakerPolicy (None: its defaults)
    consumer_dlqs: Sequence[broker_dlq.ConsumerDlq] = ()  # consumers whose broker DLQs are shown
    runners: Any = None  # a tether.ops.runners RunnerRegistry (None: the database's)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.secret_key) < 32:
            raise ConfigError("dashboard secret_key: at least 32 characters (e.g. 48 random bytes)")
        if not 1 <= self.page_size <= 500:
            raise ConfigError(f"dashboard page_size: 1..500, got {self.page_size}")
        if not 1 <= self.refresh_seconds <= 3600:
            raise ConfigError(f"dashboard refresh_seconds: 1..3600, got {self.refresh_seconds}")
        circuits.check_store(self.breaker_store)
        object.__setattr__(self, "consumer_dlqs", broker_dlq.checked(self.consumer_dlqs))


class Refused(Exception):
    """A request the dashboard turns down, with the status and the message it shows."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Pool:
    """The asyncpg pool, opened on first use (a mounted app's lifespan is not run)."""

    def __init__(self, dsn: str, pool: asyncpg.Pool | None) -> None:
        self.dsn = dsn
        self.pool = pool
        self._owned = pool is None
        self._lock = asyncio.Lock()

    async def get(self) -> asyncpg.Pool:
        if self.pool is None:
            async with self._lock:
                if self.pool is None:
                    self.pool = await asyncpg.create_pool(
                        self.dsn, min_size=1, max_size=4,
                        server_settings={"application_name": "tether-dashboard"},
                        command_timeout=30,
                    )  # fmt: skip
        return self.pool

    async def close(self) -> None:
        if self._owned and self.pool is not None:
            await self.pool.close()
            self.pool = None


class Dashboard:
    def __init__(
        self, settings: DashboardSettings, authz: Authz, pool: asyncpg.Pool | None = None
    ) -> None:
        self.settings = settings
        self.guard = Guard(authz, settings.org)
        self.db = _Pool(settings.dsn, pool)
        self.series = PendingAges(settings.refresh_seconds)
        self.history = HistoryCache()
        self.logins = MemoryRateLimitStore()  # per process: attempts per client address
        self.templates = Jinja2Templates(directory=str(_HERE / "templates"))
        self.templates.env.filters["age"] = _age
        self.templates.env.filters["when"] = _when
        self.templates.env.filters["number"] = _number

    # --- plumbing ------------------------------------------------------------------------
    def page(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        base = {
            "user": request.state.user,
            "csrf": csrf_token(request),
            "refresh": self.settings.refresh_seconds,
            "flash": request.session.pop("flash", None),
            "kinds": KINDS,
            "can": getattr(request.state, "can", {}),
        }
        return self.templates.TemplateResponse(
            request, name, {**base, **context}, status_code=status, headers=_SECURITY_HEADERS
        )

    def refusal(self, request: Request, refused: Refused) -> Response:
        return self.page(request, "error.html", {"message": refused.message}, refused.status)

    def viewer(self, handler: Callable[[Request], Awaitable[Response]]) -> Any:
        """Wrap a page: a user (else the login page) with ops:view (else 403)."""

        async def endpoint(request: Request) -> Response:
            user = user_of(request)
            if user is None:
                if request.headers.get("hx-request"):
                    return Response("login required", status_code=401)
                return RedirectResponse(request.url_for("login"), status_code=303)
            request.state.user = user
            if not await self.guard.may(user, OpsCap.VIEW):
                return self.refusal(request, Refused(403, "Missing capability: ops:view"))
            request.state.can = {
                "replay": await self.guard.shows(user, OpsCap.REPLAY),
                "purge": await self.guard.shows(user, OpsCap.PURGE),
            }
            try:
                return await handler(request)
            except BadFilter as e:
                return self.refusal(request, Refused(400, str(e)))
            except Refused as e:
                return self.refusal(request, e)

        return endpoint

    # --- login ---------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        request.state.user = None
        if request.method == "GET":
            return self.page(request, "login.html", {"error": None})
        form = await request.form()
        users = self.settings.users
        client = request.client.host if request.client else "?"
        tried = await self.logins.hit(f"login:{client}", LOGIN_LIMIT, Algorithm.SLIDING_WINDOW)
        if not tried.allowed:
            wait = max(1, round(tried.retry_after))
            message = f"Too many login attempts from {client}: try again in {wait} s."
            response = self.page(request, "login.html", {"error": message}, 429)
            response.headers["retry-after"] = str(wait)
            return response
        if not csrf_ok(request, form):
            return self.page(request, "login.html", {"error": "The form expired: try again."}, 403)
        token = str(form.get("token") or "")
        user = users.user_of(token) if users is not None else None
        if user is None:
            return self.page(request, "login.html", {"error": "Unknown token."}, 401)
        request.session.clear()
        request.session["user"] = user
        return RedirectResponse(request.url_for("overview"), status_code=303)

    async def logout(self, request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form):
            return Response("bad CSRF token", status_code=403)
        request.session.clear()
        return RedirectResponse(request.url_for("login"), status_code=303)

    # --- overview ------------------------------------------------------------------------
    async def registry(self) -> RunnerRegistry:
        if self.settings.runners is not None:
            return self.settings.runners  # type: ignore[no-any-return]
        return PostgresRunnerRegistry(await self.db.get())

    async def _overview_data(self) -> dict[str, Any]:
        pool = await self.db.get()
        counts = await queries.table_counts(pool)
        if self.series.due():
            await self.series.add(counts)
        infos = await (await self.registry()).runners()
        return {"counts": counts, "runners": runner_rows(infos, datetime.now(UTC))}

    async def overview(self, request: Request) -> Response:
        shown = history.parse_range(request.query_params.get("range"))
        data = await self._overview_data()
        return self.page(
            request, "overview.html", {**data, "range": shown, "ranges": list(history.RANGES)}
        )

    async def overview_part(self, request: Request) -> Response:
        return self.page(request, "_overview.html", await self._overview_data())

    async def series_json(self, request: Request) -> Response:
        """The chart's data over ``?range=`` (1h, 6h, 24h) from the registry's history."""
        shown = history.parse_range(request.query_params.get("range"))
        now = datetime.now(UTC)
        since = now - shown.span
        points = await self.history.points(await self.registry(), since, now, shown.bucket_s)
        oldest = self.series.since(since.timestamp())
        data = history.chart(points, since, now, shown.bucket_s, oldest)
        return JSONResponse(data, headers={"cache-control": "no-store"})

    # --- dead letters --------------------------------------------------------------------
    def _filter(self, request: Request) -> DeadFilter:
        return parse_filter(request.query_params, datetime.now(UTC))

    async def _dead(self, request: Request) -> dict[str, Any]:
        f = self._filter(request)
        cursor_text = request.query_params.get("after_cursor")
        try:
            cursor = queries.Cursor.decode(cursor_text)
        except ValueError:
            raise BadFilter("after_cursor: not a cursor this dashboard wrote") from None
        page = await queries.dead_page(await self.db.get(), f, cursor, self.settings.page_size)
        nxt = None
        if page.next is not None:
            nxt = urlencode({**_shown(f), "after_cursor": page.next.encode()})
        query = urlencode(_shown(f))
        return {
            "f": f, "page": page, "next": nxt, "query": query, "paged": cursor is not None,
            "page_size": self.settings.page_size,
        }  # fmt: skip

    async def dead(self, request: Request) -> Response:
        return self.page(request, "dead.html", await self._dead(request))

    async def dead_part(self, request: Request) -> Response:
        return self.page(request, "_dead_rows.html", await self._dead(request))

    async def _item(self, request: Request) -> dict[str, Any]:
        kind = kind_of(request.path_params["kind"])
        id = parse_uuid("id", request.path_params["id"])
        pool = await self.db.get()
        item = await queries.item(pool, kind, id)
        attempts = []
        if item is not None and kind.name == "deliveries":
            attempts = await queries.delivery_attempts(pool, id)
        return {"kind": kind, "id": id, "item": item, "attempts": attempts}

    async def item(self, request: Request) -> Response:
        data = await self._item(request)
        return self.page(request, "item.html", data, 200 if data["item"] is not None else 404)

    async def item_part(self, request: Request) -> Response:
        return self.page(request, "_item_state.html", await self._item(request))

    async def _action_form(self, request: Request) -> tuple[str, DeadFilter, Any]:
        """The checked action of a POST: its name, filter and form."""
        form = await request.form()
        fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        if "do" in fields:  # the list page's buttons: "<action>:<scope>"
            fields["action"], _, fields["scope"] = fields["do"].partition(":")
        action = fields.get("action", "")
        cap = _ACTIONS.get(action)
        if cap is None:
            raise Refused(400, "action: use replay or purge")
        if not csrf_ok(request, form):
            raise Refused(403, "The form expired or came from another site: reload the page.")
        ids = [str(v) for v in form.getlist("id")] if fields.get("scope") == "selected" else None
        if fields.get("scope") == "selected" and not ids:
            raise BadFilter("id: select at least one dead letter")
        f = parse_filter(fields, datetime.now(UTC), ids)
        return action, f, form

    async def confirm(self, request: Request) -> Response:
        action, f, _ = await self._action_form(request)
        user = request.state.user
        if not request.state.can[action]:
            await self.guard.decide_action(user, _ACTIONS[action], _describe(action, f, "confirm"))
            raise Refused(403, f"Missing capability: {_ACTIONS[action].value}")
        shown_at = datetime.now(UTC)
        n = await actions.count(await self.db.get(), f, shown_at)
        return self.page(
            request, "confirm.html",
            {"action": action, "f": f, "count": n, "shown_at": shown_at.isoformat()},
        )  # fmt: skip

    async def act(self, request: Request) -> Response:
        action, f, form = await self._action_form(request)
        user = request.state.user
        detail = _describe(action, f, "run")
        decision = await self.guard.decide_action(user, _ACTIONS[action], detail)
        if not decision.allowed:
            raise Refused(403, f"Missing capability: {_ACTIONS[action].value}")
        shown = str(form.get("shown_at") or "")
        try:
            shown_at = datetime.fromisoformat(shown)
        except ValueError:
            raise BadFilter("shown_at: confirm the action first") from None
        if shown_at.tzinfo is None or shown_at > datetime.now(UTC) + timedelta(minutes=1):
            raise BadFilter("shown_at: confirm the action first")
        pool = await self.db.get()
        run = actions.replay if action == "replay" else actions.purge
        n = await run(pool, f, shown_at)
        self.guard.done(user, _ACTIONS[action], detail, n)
        verb = "Replayed" if action == "replay" else "Purged"
        request.session["flash"] = f"{verb} {n} dead letter{'s' if n != 1 else ''}."
        if f.ids is not None and len(f.ids) == 1 and action == "replay":
            target = request.url_for("item", kind=f.kind.name, id=str(f.ids[0]))
            return RedirectResponse(target, status_code=303)
        back = f"{request.url_for('dead')}?{urlencode(_shown(f))}"
        return RedirectResponse(back, status_code=303)

    # --- webhooks, jobs, realtime --------------------------------------------------------
    async def webhooks(self, request: Request) -> Response:
        return self.page(request, "webhooks.html", await self._webhooks(request))

    async def webhooks_part(self, request: Request) -> Response:
        return self.page(request, "_webhooks.html", await self._webhooks(request))

    async def _webhooks(self, request: Request) -> dict[str, Any]:
        after = None
        text = request.query_params.get("after_cursor")
        if text:
            try:
                tenant, at, eid = text.split("|")
                after = (tenant, datetime.fromisoformat(at), uuid.UUID(eid))
                if after[1].tzinfo is None:
                    raise ValueError(at)
            except ValueError:
                raise BadFilter("after_cursor: not a cursor this dashboard wrote") from None
        rows, nxt = await queries.endpoints(await self.db.get(), after, self.settings.page_size)
        cursor = None
        if nxt is not None:
            cursor = urlencode({"after_cursor": f"{nxt[0]}|{nxt[1].isoformat()}|{nxt[2]}"})
        live = await circuits.for_page(self, [r.id for r in rows])
        # The page's own cursor, so the live part refreshes this page and not the first.
        here = urlencode({"after_cursor": text}) if text else ""
        return {"endpoints": rows, "next": cursor, "here": here, **live}

    async def endpoint(self, request: Request) -> Response:
        return self.page(request, "endpoint.html", await self._endpoint(request))

    async def endpoint_part(self, request: Request) -> Response:
        return self.page(request, "_endpoint.html", await self._endpoint(request))

    async def _endpoint(self, request: Request) -> dict[str, Any]:
        id = parse_uuid("id", request.path_params["id"])
        before = None
        text = request.query_params.get("before")
        if text:
            try:
                before = datetime.fromisoformat(text)
            except ValueError:
                before = None
            if before is None or before.tzinfo is None:
                raise BadFilter("before: not a cursor this dashboard wrote")
        pool = await self.db.get()
        ep = await queries.endpoint(pool, id)
        if ep is None:
            raise Refused(404, f"No endpoint {id}")
        log, nxt = await queries.endpoint_attempts(pool, id, before, self.settings.page_size)
        more = None if nxt is None else urlencode({"before": nxt.isoformat()})
        live = await circuits.for_page(self, [ep.id])
        here = urlencode({"before": text}) if text else ""
        return {"ep": ep, "log": log, "next": more, "here": here, **live}

    async def jobs(self, request: Request) -> Response:
        pool = await self.db.get()
        since = date.today() - timedelta(days=13)
        rescues = await queries.recoveries(pool, since)
        per_day: dict[date, int] = {}
        for day, _, n in rescues:
            per_day[day] = per_day.get(day, 0) + n
        counts = [c for c in await queries.table_counts(pool) if c.name == "tether_jobs"]
        data = {"rescues": rescues, "per_day": sorted(per_day.items()), "counts": counts}
        return self.page(request, "jobs.html", data)

    async def realtime(self, request: Request) -> Response:
        """Every real-time gateway in the registry, and this process's gateway in detail."""
        infos = await (await self.registry()).runners()
        gateways = runner_rows(infos, datetime.now(UTC), kind="realtime-gateway")
        beats = await queries.last_beats(await self.db.get(), [g.info.id for g in gateways])
        # A rate is now's only while the gateway beats; a lost one's last rate is history.
        rates = {
            g.info.id: rate_now(beats.get(g.info.id, []), "messages_total")
            if g.status in ("alive", "late") else None
            for g in gateways
        }  # fmt: skip
        rt = realtime_snapshot(self.settings.gateway)
        return self.page(request, "realtime.html", {"rt": rt, "gateways": gateways, "rates": rates})

    def routes(self) -> list[Route | Mount]:
        v = self.viewer
        return [
            Route("/", v(self.overview), name="overview"),
            Route("/login", self.login, methods=["GET", "POST"], name="login"),
            Route("/logout", self.logout, methods=["POST"], name="logout"),
            Route("/partials/overview", v(self.overview_part), name="overview_part"),
            Route("/api/series", v(self.series_json), name="series"),
            Route("/dead", v(self.dead), name="dead"),
            Route("/partials/dead", v(self.dead_part), name="dead_part"),
            Route("/dead/{kind}/{id}", v(self.item), name="item"),
            Route("/partials/dead/{kind}/{id}", v(self.item_part), name="item_part"),
            Route("/actions/confirm", v(self.confirm), methods=["POST"], name="confirm"),
            Route("/actions/run", v(self.act), methods=["POST"], name="act"),
            Route("/webhooks", v(self.webhooks), name="webhooks"),
            Route("/webhooks/{id}", v(self.endpoint), name="endpoint"),
            Route("/partials/webhooks", v(self.webhooks_part), name="webhooks_part"),
            Route("/partials/webhooks/{id}", v(self.endpoint_part), name="endpoint_part"),
            Route("/jobs", v(self.jobs), name="jobs"),
            Route("/realtime", v(self.realtime), name="realtime"),
            *circuits.routes(self),
            *broker_dlq_pages.routes(self),
            Mount("/static", app=StaticFiles(directory=str(_HERE / "static")), name="static"),
        ]


def _shown(f: DeadFilter) -> dict[str, str]:
    """The filter's non-empty fields, for links back to the same list."""
    return {k: v for k, v in f.raw.items() if v}


def _describe(action: str, f: DeadFilter, step: str) -> dict[str, Any]:
    d: dict[str, Any] = {"action": action, "step": step, "kind": f.kind.name}
    d |= {k: v for k, v in f.raw.items() if v and k != "kind"}
    if f.ids is not None:
        d["ids"] = [str(i) for i in f.ids[:20]] + (["..."] if len(f.ids) > 20 else [])
    return d


def _age(value: timedelta | float | None) -> str:
    if value is None:
        return "—"
    s = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def create_dashboard(
    settings: DashboardSettings, authz: Authz, *, pool: asyncpg.Pool | None = None
) -> Starlette:
    """The dashboard app. ``pool``: an asyncpg pool to share (else one is opened on first
    use and closed with the app's lifespan when it runs)."""
    dashboard = Dashboard(settings, authz, pool)

    async def lifespan(app: Starlette) -> Any:
        yield
        await dashboard.db.close()

    app = Starlette(
        routes=dashboard.routes(),
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret_key,
                session_cookie="tether_dashboard",
                max_age=settings.session_max_age,
                same_site="strict",
                https_only=settings.https_only,
            )
        ],
        lifespan=_contextmanager(lifespan),
    )
    app.state.dashboard = dashboard
    return app


def _contextmanager(fn: Any) -> Any:
    from contextlib import asynccontextmanager

    return asynccontextmanager(fn)
