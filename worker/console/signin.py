"""Sign in with a console token, sign out, and the packaged static files.

The sign-in form is protected against login CSRF with a double-submit value: a
random cookie set with the form, echoed in a hidden field, compared on POST.
"""

from __future__ import annotations

import secrets
from importlib import resources

import structlog
from aiohttp import web

from worker.console.app import CONSOLE, SESSION_COOKIE, session_of
from worker.console.auth import same_secret
from worker.console.html import esc, hidden, page

__all__ = ["setup"]

LOGIN_COOKIE = "fleet_login"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}
log = structlog.get_logger("worker.console")


def _cookie_flags(request: web.Request) -> dict[str, object]:
    secure = request.app[CONSOLE].secure_cookies
    return {"httponly": True, "samesite": "Strict", "secure": secure, "path": "/"}


def _form(request: web.Request, problem: str = "", status: int = 200) -> web.Response:
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
    return response


async def login_form(request: web.Request) -> web.Response:
    return _form(request)


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    if not same_secret(str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE)):
        raise web.HTTPForbidden(text="403: the sign-in form expired; reload it")
    console = request.app[CONSOLE]
    principal = console.tokens.check(str(form.get("token") or ""))
    if principal is None:
        log.warning("console_sign_in_refused", remote=request.remote)
        return _form(request, "That token is not recognised.", status=401)
    cookie, _session = console.sessions.open(principal)
    log.info("console_sign_in", who=principal.name, role=principal.role)
    response = web.HTTPSeeOther("/")
    response.set_cookie(SESSION_COOKIE, cookie, **_cookie_flags(request))  # type: ignore[arg-type]
    response.del_cookie(LOGIN_COOKIE, path="/")
    raise response


async def logout(request: web.Request) -> web.Response:
    if session_of(request) is not None:
        request.app[CONSOLE].sessions.close(request.cookies.get(SESSION_COOKIE))
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
