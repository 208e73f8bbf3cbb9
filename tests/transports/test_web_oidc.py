"""The web UI's "Sign in with the issuer" against a local OIDC provider (tests/emulators/oidc.py)
with aiohttp as the browser (following redirects, keeping cookies): the authorization code
flow with PKCE opens a browser session as the provider's user; a sign-in not started in this
browser, a used state, the provider's refusal, a wrong nonce and a refused client secret each
end on the sign-in page saying why, with no session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from hub.ids import IdGenerator, Kind
from tests.emulators.oidc import OidcProvider
from tests.transports.conftest import Gateway
from transports.gateway import make_app

CLIENT = "chitty-web"
SECRET = "provider-secret"


@dataclass
class World:
    gateway: Gateway
    provider: OidcProvider
    url: str  # a gateway app configured for the provider


@pytest.fixture(scope="module")
def world(gateway: Gateway) -> Iterator[World]:
    user = IdGenerator("oidc-web", lambda: time.time_ns() // 1_000_000).new(Kind.USER)
    provider = OidcProvider(client_id=CLIENT, user=user, client_secret=SECRET)
    provider_runner, provider.url = gateway.serve(provider.app())
    settings = gateway.settings.model_copy(
        update={
            "oidc_issuer": provider.url,
            "oidc_audience": CLIENT,
            "oidc_jwks_url": f"{provider.url}/jwks",
            "oidc_client_secret": SECRET,
        }
    )
    runner, url = gateway.serve(make_app(gateway.runtime, settings, tokens=gateway.tokens))
    yield World(gateway, provider, url)
    gateway.call(runner.cleanup())
    gateway.call(provider_runner.cleanup())


def browse(world: World, *paths: str) -> list[tuple[int, str, str]]:
    """GET each path (or absolute URL) in one cookie-keeping, redirect-following browser:
    (status, final URL, text) of each."""

    async def go() -> list[tuple[int, str, str]]:
        jar = aiohttp.CookieJar(unsafe=True)  # keep cookies of 127.0.0.1
        seen = []
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            for path in paths:
                url = path if path.startswith("http") else world.url + path
                async with browser.get(url) as answer:
                    seen.append((answer.status, str(answer.url), await answer.text()))
        return seen

    return world.gateway.call(go())


def test_signing_in_with_the_issuer_opens_a_session_as_its_user(world: World) -> None:
    issued = world.provider.tokens_issued
    (status, url, text), (home, _, app), (api, _, todos) = browse(
        world, "/signin/oidc", "/", "/api/v1/todos"
    )
    assert status == 200 and url.startswith(world.url + "/signin/oidc/callback"), (status, url)
    assert "Signed in" in text and 'http-equiv="refresh"' in text
    assert world.provider.tokens_issued == issued + 1
    assert home == 200 and world.provider.user in app and "csrf-token" in app  # the app
    assert api == 200 and '"items"' in todos  # the cookie authenticates the API too


def test_the_sign_in_page_offers_the_issuer(world: World) -> None:
    [(status, _, text)] = browse(world, "/")
    assert status == 200 and 'href="/signin/oidc"' in text and world.provider.url in text


def test_a_sign_in_started_in_another_browser_does_not_finish_here(world: World) -> None:
    async def authorize_url() -> str:
        async with (
            aiohttp.ClientSession() as other,
            other.get(world.url + "/signin/oidc", allow_redirects=False) as answer,
        ):
            assert answer.status == 303
            return answer.headers["Location"]

    started = world.gateway.call(authorize_url())
    (status, _, text), (home, _, page) = browse(world, started, "/")
    assert status == 400 and "not started in this browser" in text, (status, text)
    assert home == 200 and "Hub token" in page  # still the sign-in page: no session


def test_a_callback_replayed_is_refused(world: World) -> None:
    async def twice() -> tuple[int, str]:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            async with browser.get(world.url + "/signin/oidc") as first:
                assert first.status == 200
                callback = str(first.url)
            # The state cookie was spent with it; bring it back as a replaying attacker would.
            state = callback.split("state=")[1].split("&")[0]
            jar.update_cookies({"chitty_oidc": state}, response_url=first.url)
            async with browser.get(callback) as again:
                return again.status, await again.text()

    status, text = world.gateway.call(twice())
    assert status == 400 and "expired or was already used" in text, text


@pytest.mark.parametrize(
    ("change", "status", "said"),
    [
        ({"deny": "access_denied"}, 401, "the issuer did not sign you in: the user said no"),
        ({"wrong_nonce": True}, 401, "nonce: the ID token was not issued for this sign-in"),
        ({"client_secret": "another"}, 401, "client authentication failed"),
        ({"role": "superuser"}, 401, "is not accepted"),
    ],
)
def test_a_refused_sign_in_says_why_and_opens_no_session(
    world: World, change: dict[str, Any], status: int, said: str
) -> None:
    before = {name: getattr(world.provider, name) for name in change}
    for name, value in change.items():
        setattr(world.provider, name, value)
    try:
        (got, _, text), (_, _, page) = browse(world, "/signin/oidc", "/")
    finally:
        for name, value in before.items():
            setattr(world.provider, name, value)
    assert got == status and said in text, (got, text)
    assert 'role="alert"' in text and "Hub token" in page


def test_a_hub_without_an_issuer_says_so(gateway: Gateway) -> None:
    status, body, _ = gateway.request("GET", "/signin/oidc")
    assert status == 404 and body["field"] == "path" and "CHITTY_OIDC_ISSUER" in body["detail"]
