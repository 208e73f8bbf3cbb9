"""The web UI's pages: `/` (the sign-in page, or the app once signed in), sign-in and
sign-out, and the static files. The app's views are plain ES modules under static/ that call
the REST API and `/ws` with the session cookie, so a browser sees exactly what the API shows
its principal (the same scope checks, no second implementation of them)."""

from __future__ import annotations

import hmac
import json
import mimetypes
import secrets
from html import escape
from pathlib import Path
from string import Template

from aiohttp import web

from transports.gateway.auth import AUTH
from transports.gateway.browser import COOKIE
from transports.gateway.errors import ApiError
from transports.web.oidc import (
    CALLBACK,
    PENDING_TTL_S,
    STATE_COOKIE,
    OidcSignIn,
    SignInError,
    nonce_of,
)
from transports.web.vendor import integrity

HERE = Path(__file__).parent
SIGNIN = Template((HERE / "templates" / "signin.html").read_text())
APP = Template((HERE / "templates" / "app.html").read_text())
SIGNIN_COOKIE = "chitty_signin"  # the sign-in form's CSRF token, double-submitted
# Pages load only this origin's scripts, styles, sockets and images; nothing frames them. The
# one inline style allowed is the rule cytoscape (vendored) injects for its graph container.
CYTOSCAPE_STYLE = "'sha256-pgvDUBa4IjFA2yuSJ2cqcyxmNYJMborsd0ORcRv9vw8='"
PAGE_CSP = (
    f"default-src 'self'; script-src 'self'; style-src 'self' {CYTOSCAPE_STYLE}; "
    "img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
mimetypes.add_type("application/manifest+json", ".webmanifest")
OIDC_SIGNIN = web.AppKey("oidc_signin", OidcSignIn)
# After the issuer's callback, a page that moves on to / (a redirect would not do: the browser
# came from the issuer's site, and a SameSite=Strict cookie is not sent on that same
# cross-site navigation; a navigation this page starts is same-site).
SIGNED_IN = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
    '<meta http-equiv="refresh" content="0;url=/"><title>Signed in</title></head>'
    '<body><p>Signed in. <a href="/">Open the hub</a>.</p></body></html>'
)


def _page(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


def _see_other(location: str) -> web.Response:
    """303 to `location`, with a link for a client that does not follow it (as documented:
    every answer of these routes is text/html)."""
    link = escape(location, quote=True)
    return web.Response(
        status=303,
        headers={"Location": location},
        text=f'<!doctype html><title>See other</title><a href="{link}">Continue</a>',
        content_type="text/html",
    )


def _set_cookie(request: web.Request, response: web.Response, name: str, value: str) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="Strict", secure=request.secure, path="/"
    )


async def index(request: web.Request) -> web.Response:
    """GET /: the app for a signed-in browser, else the sign-in page (which also says how
    to reach the hub without a browser)."""
    auth = request.app[AUTH]
    session_id = request.cookies.get(COOKIE, "")
    session = auth.browsers.get(session_id) if session_id else None
    if session is not None and await auth.still_valid(session.credential):
        principal = await auth.principal(session.credential)
        text = APP.substitute(
            csrf=escape(session.csrf),
            who=escape(principal.chitty_id),
            role=escape(principal.role.value),
            vendor=json.dumps(integrity()).replace("</", "<\\/"),
        )
        return _page(text)
    return _signin_page(request)


def _signin_page(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    csrf = secrets.token_urlsafe(32)
    mcp = (
        " and MCP at <code>/mcp</code>"
        if "mcp_post" in request.app.router.named_resources()
        else ""
    )
    flow = request.app.get(OIDC_SIGNIN)
    oidc = " (or an OIDC ID token)" if flow is not None else ""
    link = (
        f'<p><a class="button" href="/signin/oidc">Sign in with {escape(flow.issuer)}</a></p>'
        if flow is not None
        else ""
    )
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    text = SIGNIN.substitute(
        csrf=csrf,
        base=escape(f"{request.scheme}://{request.host}"),
        mcp=mcp,
        oidc=oidc,
        oidc_link=link,
        error=alert,
    )
    response = _page(text, status)
    _set_cookie(request, response, SIGNIN_COOKIE, csrf)
    return response


async def signin(request: web.Request) -> web.Response:
    """POST /signin (a form: csrf, token): a valid credential opens a browser session."""
    form = await request.post()
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not hmac.compare_digest(str(form.get("csrf", "")), expected):
        return _signin_page(request, "The form expired; sign in again.", 403)
    token = str(form.get("token", "")).strip()
    if not token:
        return _signin_page(request, "token: enter a hub token.", 400)
    auth = request.app[AUTH]
    try:
        await auth.principal(token)
    except ApiError as error:
        return _signin_page(request, f"token: not accepted ({error.detail}).", 401)
    session_id, _ = auth.browsers.open(token)
    response = _see_other("/")
    _set_cookie(request, response, COOKIE, session_id)
    response.del_cookie(SIGNIN_COOKIE, path="/")
    return response


def _oidc(request: web.Request) -> OidcSignIn:
    flow = request.app.get(OIDC_SIGNIN)
    if flow is None:
        raise ApiError(
            404, "not_found", "this hub has no OIDC issuer (CHITTY_OIDC_ISSUER and friends)", "path"
        )
    return flow


async def oidc_begin(request: web.Request) -> web.Response:
    """GET /signin/oidc: off to the issuer, with a state bound to this browser."""
    public = request.app[AUTH].settings.public_url
    origin = public.rstrip("/") if public else f"{request.scheme}://{request.host}"
    state, url = await _oidc(request).begin(origin + CALLBACK)
    response = _see_other(url)
    # Lax, not Strict: it must come back with the browser from the issuer's site.
    response.set_cookie(
        STATE_COOKIE,
        state,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path=CALLBACK,
        max_age=int(PENDING_TTL_S),
    )
    return response


async def oidc_callback(request: web.Request) -> web.Response:
    """GET /signin/oidc/callback: the issuer's code becomes an ID token, checked as any bearer
    JWT is and for this sign-in's nonce, which opens a browser session."""
    flow, auth = _oidc(request), request.app[AUTH]
    try:
        token, nonce = await flow.finish(dict(request.query), request.cookies.get(STATE_COOKIE, ""))
        try:
            await auth.principal(token)
        except ApiError as error:
            raise SignInError(
                f"the issuer's ID token is not accepted ({error.detail}).", 401
            ) from None
        if nonce_of(token) != nonce:
            raise SignInError("nonce: the ID token was not issued for this sign-in.", 401)
    except SignInError as error:
        response = _signin_page(request, str(error), error.status)
    else:
        session_id, _ = auth.browsers.open(token)
        response = _page(SIGNED_IN)
        _set_cookie(request, response, COOKIE, session_id)
    response.del_cookie(STATE_COOKIE, path=CALLBACK)
    return response


async def signout(request: web.Request) -> web.Response:
    """POST /signout (a form: csrf): closes the browser session; the token stays valid."""
    form = await request.post()
    auth = request.app[AUTH]
    session_id = request.cookies.get(COOKIE, "")
    session = auth.browsers.get(session_id) if session_id else None
    if session is not None:
        if not hmac.compare_digest(str(form.get("csrf", "")), session.csrf):
            raise ApiError(403, "csrf", "the sign-out form's CSRF token does not match", "csrf")
        auth.browsers.close(session_id)
    response = _see_other("/")
    response.del_cookie(COOKIE, path="/")
    return response


STATIC = (HERE / "static").resolve()


async def static_file(request: web.Request) -> web.FileResponse:
    """GET /static/{path}: a file under static/ (nothing outside it, whatever the path says)."""
    path = (STATIC / request.match_info["path"]).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file():
        raise ApiError(404, "not_found", "no such file", "path")
    return web.FileResponse(path)


def add_web_routes(app: web.Application) -> None:
    """Serve the web UI at / with its sign-in, sign-out and /static/ files."""
    app.router.add_get("/", index, name="index")
    app.router.add_post("/signin", signin, name="signin")
    app.router.add_post("/signout", signout, name="signout")
    auth = app[AUTH]
    if auth.oidc is not None:  # the gateway verifies the issuer's tokens: offer its sign-in
        app[OIDC_SIGNIN] = OidcSignIn(
            auth.oidc.issuer, auth.oidc.audience, auth.settings.oidc_client_secret
        )
    app.router.add_get("/signin/oidc", oidc_begin, name="signin_oidc")
    app.router.add_get(CALLBACK, oidc_callback, name="signin_oidc_callback")
    app.router.add_get("/static/{path:.+}", static_file, name="static")
