"""The console application: its state, security middleware, sign-in and serving.

Order of the middleware: headers (CSP and friends on every answer, errors too),
then authentication (401 unless a bearer token or a session cookie names someone;
a cookie POST must carry the session's CSRF token), then the page.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

import aiohttp
import structlog
from aiohttp import web

from worker.config import Settings
from worker.console.auth import (
    Principal,
    Session,
    SessionBook,
    TokenBook,
    parse_tokens,
    same_secret,
)
from worker.errors import WorkerError
from worker.observability.logging import add_secrets, sanitize
from worker.ops.dlq import DlqWorkbench
from worker.queue import QueueClient
from worker.store import Store

__all__ = [
    "CONSOLE",
    "Console",
    "build_app",
    "csrf_field",
    "principal_of",
    "render",
    "require_operator",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("worker.console")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SESSION_COOKIE = "fleet_session"
# all that answers without a credential: the sign-in form and its stylesheet (no data)
PUBLIC = frozenset({"/login", "/static/console.css"})


@dataclass(slots=True)
class Console:
    """What every page reads: settings, the store, the queue, who may come in."""

    settings: Settings
    tokens: TokenBook
    sessions: SessionBook
    secure_cookies: bool
    metrics_urls: list[str] = field(default_factory=list)
    store: Store | None = None
    queue: QueueClient | None = None
    http: aiohttp.ClientSession | None = None
    owns_clients: bool = False

    def db(self) -> Store:
        if self.store is None:
            raise web.HTTPServiceUnavailable(text="the store is not open")
        return self.store

    def sqs(self) -> QueueClient:
        if self.queue is None:
            raise web.HTTPServiceUnavailable(text="the queue client is not open")
        return self.queue

    def workbench(self) -> DlqWorkbench:
        return DlqWorkbench(self.sqs(), self.db())


CONSOLE = web.AppKey("console", Console)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Who is asking: set by ``authenticate`` for the task that handles the request (a context
# variable rather than request storage, which wants aiohttp 3.14's RequestKey).
_asker: ContextVar[tuple[Principal, Session | None] | None] = ContextVar("asker", default=None)


def principal_of(request: web.Request) -> Principal:
    found = _asker.get()
    if found is None:
        raise web.HTTPUnauthorized(text="401: sign in at /login")
    return found[0]


def session_of(request: web.Request) -> Session | None:
    found = _asker.get()
    return found[1] if found else None


def require_operator(request: web.Request) -> Principal:
    who = principal_of(request)
    if not who.may_operate:
        raise web.HTTPForbidden(text=f"403: {who.role} may not do this (operator only)")
    return who


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    except WorkerError as exc:
        log.warning("console_backend_error", error=sanitize(str(exc)))
        response = web.Response(status=503, text=f"503: {sanitize(str(exc))}")
    response.headers.update(HEADERS)
    return response


def _unauthorized() -> web.Response:
    return web.Response(
        status=401,
        text='<!doctype html><title>401</title><p>401: sign in at <a href="/login">/login</a>.',
        content_type="text/html",
        headers={"WWW-Authenticate": 'Bearer realm="fleet console"'},
    )


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC:
        return await handler(request)
    console = request.app[CONSOLE]
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        principal = console.tokens.check(header[7:].strip())
        if principal is None:
            return _unauthorized()
        # a bearer is never sent by a browser on its own: no CSRF check needed
        return await _as(principal, None, request, handler)
    cookie = request.cookies.get(SESSION_COOKIE)
    session = await console.sessions.find(console.db(), cookie) if cookie else None
    if session is None:
        return _unauthorized()
    if request.method not in ("GET", "HEAD"):
        await _check_csrf(request, session)
    return await _as(session.principal, session, request, handler)


async def _as(
    principal: Principal, session: Session | None, request: web.Request, handler: Handler
) -> web.StreamResponse:
    token = _asker.set((principal, session))
    try:
        return await handler(request)
    finally:
        _asker.reset(token)


async def _check_csrf(request: web.Request, session: Session) -> None:
    form = await request.post()
    sent = request.headers.get("X-CSRF-Token") or form.get("csrf")
    if not same_secret(str(sent) if sent else None, session.csrf):
        log.warning("console_csrf_refused", path=request.path, who=session.principal.name)
        raise web.HTTPForbidden(text="403: missing or wrong CSRF token; reload the page")


async def _open(app: web.Application) -> None:
    console = app[CONSOLE]
    if console.store is None:
        settings = console.settings
        console.store = Store(settings.require_database_url(), min_size=1, max_size=5)
        await console.store.open()
        console.queue = QueueClient.from_settings(settings)
        await console.queue.open()
        console.owns_clients = True
    console.http = aiohttp.ClientSession()


async def _close(app: web.Application) -> None:
    console = app[CONSOLE]
    if console.http is not None:
        await console.http.close()
    if not console.owns_clients:
        return
    if console.queue is not None:
        await console.queue.close()
    if console.store is not None:
        await console.store.close()


def build_app(
    settings: Settings,
    *,
    metrics_urls: list[str] | None = None,
    store: Store | None = None,
    queue: QueueClient | None = None,
) -> web.Application:
    """The console for ``settings``; an open ``store`` and ``queue`` may be lent (tests)."""
    from worker.console import pages_costs, pages_dlq, pages_overview, pages_workflows, signin

    raw = settings.console_tokens.get_secret_value() if settings.console_tokens else None
    add_secrets(part.split(":", 2)[-1] for part in (raw or "").split(","))
    tokens = parse_tokens(raw)
    console = Console(
        settings=settings,
        tokens=tokens,
        sessions=SessionBook(tokens),
        secure_cookies=not is_loopback(settings.console_host),
        metrics_urls=metrics_urls or [],
        store=store,
        queue=queue,
    )
    app = web.Application(middlewares=[security_headers, authenticate], client_max_size=256_000)
    app[CONSOLE] = console
    app.on_startup.append(_open)
    app.on_cleanup.append(_close)
    for module in (signin, pages_overview, pages_workflows, pages_dlq, pages_costs):
        module.setup(app)
    return app


def render(request: web.Request, title: str, body: str, status: int = 200) -> web.Response:
    """A full page for whoever asked, with their CSRF token in the sign-out form."""
    from worker.console.html import page

    session = session_of(request)
    html = page(title, body, principal_of(request), session.csrf if session else "", request.path)
    return web.Response(text=html, content_type="text/html", status=status)


def csrf_field(request: web.Request) -> str:
    from worker.console.html import hidden

    session = session_of(request)
    return hidden("csrf", session.csrf) if session else ""
