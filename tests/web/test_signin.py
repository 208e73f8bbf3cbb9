"""Sign-in to a browser session: the cookie is HttpOnly and SameSite=Strict, the token is in
no URL and no storage a script can read, every form and write needs the CSRF token, and a
member sees only what the API shows them."""

from __future__ import annotations

import re
import urllib.request
from http.cookiejar import CookieJar
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode

from tests.web.conftest import Hub, screenshot, sign_in


def test_the_page_at_root_is_public_and_says_how_to_reach_the_hub(hub: Hub) -> None:
    with urllib.request.urlopen(hub.url + "/") as response:
        page = response.read().decode()
        csp = response.headers["Content-Security-Policy"]
    assert "Sign in" in page and "/api/v1/openapi.json" in page and "chitty --help" in page
    assert "/health" in page and "/ws" in page
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_sign_in_sets_an_httponly_strict_cookie_and_no_token_anywhere_a_script_sees(
    page: Any, hub: Hub
) -> None:
    sign_in(page, hub)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "chitty_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert hub.admin not in cookie["value"]
    assert hub.admin not in page.url
    stored = page.evaluate(
        "() => JSON.stringify([document.cookie, {...localStorage}, {...sessionStorage}])"
    )
    assert hub.admin not in stored and "chitty_session" not in stored
    assert hub.admin not in page.content()
    screenshot(page, "signed-in")
    assert not page.errors, page.errors


def test_signing_in_with_the_oidc_issuer_lands_on_the_app_as_its_user(page: Any, hub: Hub) -> None:
    page.goto(hub.url + "/")
    page.get_by_role("link", name=f"Sign in with {hub.issuer.url}").click()
    page.wait_for_selector("#live.on")  # the app, its stream open: the Strict cookie was sent
    assert page.url.startswith(hub.url + "/") and "/signin" not in page.url  # left the callback
    assert page.locator(".who").inner_text() == hub.issuer.user
    [cookie] = [c for c in page.context.cookies() if c["name"] == "chitty_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    stored = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert "eyJ" not in stored and "eyJ" not in page.url  # no ID token where a script sees it
    screenshot(page, "signed-in-oidc")
    assert not page.errors, page.errors


def test_a_wrong_token_is_refused_with_a_reason(page: Any, hub: Hub) -> None:
    page.goto(hub.url + "/")
    page.get_by_label("Hub token").fill("chitty_0123456789abcdef_" + "A" * 43)
    page.get_by_role("button", name="Sign in").click()
    assert "not accepted" in page.get_by_role("alert").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "chitty_session"]


def _opener() -> tuple[urllib.request.OpenerDirector, CookieJar]:
    jar = CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)), jar


def _form_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _signed_in(hub: Hub) -> tuple[urllib.request.OpenerDirector, str]:
    """A cookie session opened through the form: the opener holding it and its CSRF token."""
    opener, _ = _opener()
    signin = opener.open(hub.url + "/").read().decode()
    form = urlencode({"csrf": _form_csrf(signin), "token": hub.admin}).encode()
    app = opener.open(hub.url + "/signin", form).read().decode()
    found = re.search(r'name="csrf-token" content="([^"]+)"', app)
    assert found, app
    return opener, found.group(1)


def _status(opener: urllib.request.OpenerDirector, request: urllib.request.Request) -> int:
    try:
        return int(opener.open(request).status)
    except HTTPError as error:
        return error.code


def test_the_sign_in_form_needs_its_csrf_token(hub: Hub) -> None:
    opener, _ = _opener()
    opener.open(hub.url + "/")
    form = urlencode({"csrf": "forged", "token": hub.admin}).encode()
    assert _status(opener, urllib.request.Request(hub.url + "/signin", form)) == 403


def test_a_cookie_session_reads_but_writes_only_with_its_csrf_header(hub: Hub) -> None:
    opener, csrf = _signed_in(hub)
    assert _status(opener, urllib.request.Request(hub.url + "/api/v1/projects")) == 200
    body = b'{"name": "csrf"}'
    headers = {"Content-Type": "application/json"}
    url = hub.url + "/api/v1/projects"
    forged = urllib.request.Request(url, body, headers)
    assert _status(opener, forged) == 403
    honest = urllib.request.Request(url, body, {**headers, "X-CSRF-Token": csrf})
    assert _status(opener, honest) == 201


def test_sign_out_needs_the_csrf_token_and_ends_the_session(hub: Hub) -> None:
    opener, csrf = _signed_in(hub)
    out = hub.url + "/signout"
    assert _status(opener, urllib.request.Request(out, urlencode({"csrf": "x"}).encode())) == 403
    assert _status(opener, urllib.request.Request(out, urlencode({"csrf": csrf}).encode())) == 200
    assert _status(opener, urllib.request.Request(hub.url + "/api/v1/projects")) == 401


def test_a_member_sees_only_their_own_projects(page: Any, hub: Hub) -> None:
    alice, _ = hub.token("web-alice")
    bob, _ = hub.token("web-bob")
    hub.project("Alice's secret plan", alice)
    hub.project("Bob's board", bob)
    sign_in(page, hub, bob)
    page.wait_for_selector("h1:has-text('Board')")
    options = page.locator("#board-project option").all_inner_texts()
    assert "Bob's board" in options and "Alice's secret plan" not in options
    page.goto(hub.url + "/#/entities/projects")
    page.wait_for_selector("h1:has-text('Projects')")
    assert "Alice's secret plan" not in page.content()
    screenshot(page, "member-projects")
