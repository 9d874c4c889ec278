"""Sign in with a console token, sign out, and the packaged static files.

The sign-in form is protected against login CSRF with a double-submit value: a
random cookie set with the form, echoed in a hidden field, compared on POST.
Guessing is slowed: after ``SIGN_IN_LIMIT`` failures from one client address within
``SIGN_IN_WINDOW`` seconds, sign-ins from it are refused with 429 and Retry-After
(counted in PostgreSQL, so every console process sees the same count).
"""

from __future__ import annotations

import math
import secrets
from importlib import resources

import structlog
from aiohttp import web

from worker.console.app import CONSOLE, SESSION_COOKIE, session_of
from worker.console.auth import same_secret
from worker.console.html import esc, hidden, page
from worker.store.sessions import sign_in_attempt, sign_in_succeeded

__all__ = ["setup"]

LOGIN_COOKIE = "fleet_login"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}
log = structlog.get_logger("worker.console")
SIGN_IN_LIMIT = 5  # failed sign-ins from one address ...
SIGN_IN_WINDOW = 60.0  # ... within this many seconds, then 429 until the oldest ages out


def _cookie_flags(request: web.Request) -> dict[str, object]:
    secure = request.app[CONSOLE].secure_cookies
    return {"httponly": True, "samesite": "Strict", "secure": secure, "path": "/"}


def _form(
    request: web.Request, problem: str = "", status: int = 200, retry_after: int = 0
) -> web.Response:
    nonce = secrets.token_urlsafe(24)
    note = f'<p class="error">{esc(problem)}</p>' if problem else ""
    body = (
        '<div class="login">'
        f"{note}"
        '<form method="post" action="/login">'
        f"{hidden('csrf', nonce)}"
        '<label>Console token<input type="password" name="token" autocomplete="off"'
        " required autofocus></label>"
        '<button type="submit">Sign in</button></form>'
        '<p class="muted">Ask an operator for a token (FLEET_CONSOLE_TOKENS).</p></div>'
    )
    response = web.Response(
        text=page("Sign in", body, None, None, "/login"), content_type="text/html", status=status
    )
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=900, **_cookie_flags(request))  # type: ignore[arg-type]
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


async def login_form(request: web.Request) -> web.Response:
    return _form(request)


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    if not same_secret(str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE)):
        raise web.HTTPForbidden(text="403: the sign-in form expired; reload it")
    console = request.app[CONSOLE]
    db, remote = console.db(), request.remote or "unknown"
    # counted as a failure before the token is looked at (a success takes it back)
    failures, clears_in = await sign_in_attempt(db, remote, SIGN_IN_WINDOW, SIGN_IN_LIMIT)
    if failures >= SIGN_IN_LIMIT:
        wait = max(1, math.ceil(clears_in))
        log.warning("console_sign_in_throttled", remote=remote, failures=failures,
                    retry_after=wait)
        return _form(request, f"Too many failed sign-ins; try again in {wait} s.", 429, wait)
    token = str(form.get("token") or "")
    principal = console.tokens.check(token)
    if principal is None:
        log.warning("console_sign_in_refused", remote=remote, failures=failures + 1,
                    limit=SIGN_IN_LIMIT)
        return _form(request, "That token is not recognised.", status=401)
    await sign_in_succeeded(db, remote)
    cookie, _session = await console.sessions.open(db, principal, token)
    log.info("console_sign_in", who=principal.name, role=principal.role, remote=remote)
    response = web.HTTPSeeOther("/")
    response.set_cookie(SESSION_COOKIE, cookie, **_cookie_flags(request))  # type: ignore[arg-type]
    response.del_cookie(LOGIN_COOKIE, path="/")
    raise response


async def logout(request: web.Request) -> web.Response:
    if session_of(request) is not None:
        console = request.app[CONSOLE]
        await console.sessions.close(console.db(), request.cookies.get(SESSION_COOKIE))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or suffix not in STATIC_TYPES:
        raise web.HTTPNotFound()
    entry = resources.files("worker.console") / "static" / name
    if not entry.is_file():
        raise web.HTTPNotFound()
    return web.Response(text=entry.read_text(), content_type=STATIC_TYPES[suffix])


def setup(app: web.Application) -> None:
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/static/{name}", static)
