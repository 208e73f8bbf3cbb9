"""A real `chitty up` on a loopback port and a real headless Chromium (Debian's `chromium`,
driven by Playwright for Python through `executable_path`; nothing is downloaded) for the
web UI's tests. Screenshots of each view go to `tests/web/screenshots/` (git-ignored)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.ids import IdGenerator, Kind
from tests.emulators import Background, serve
from tests.emulators.oidc import OidcProvider
from tests.transports.test_restart import ADMIN, free_port, launch, start

SCREENSHOTS = Path(__file__).parent / "screenshots"
ROOT = Path(__file__).resolve().parents[2]


def chromium_path() -> str | None:
    """The browser to drive: CHITTY_CHROMIUM, else Debian's chromium on PATH."""
    return os.environ.get("CHITTY_CHROMIUM") or shutil.which("chromium")


@dataclass
class Hub:
    """A running `chitty up`: its URL, data dir, REST as any principal, and the OIDC provider
    its users may also sign in with."""

    url: str
    data: Path
    issuer: OidcProvider
    admin: str = ADMIN

    def rest(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """`path` under /api/v1 as `token` (the admin by default); the JSON answer, or
        AssertionError with the status when it is not a 2xx."""
        status, answer = self.call(method, path, body, token)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token or ADMIN}"}
        request = urllib.request.Request(
            f"{self.url}/api/v1{path}", data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def token(self, name: str, role: str = "member") -> tuple[str, str]:
        """A new token made with `chitty token create` on the hub's data dir: (secret, id)."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "transports.cli",
                "token",
                "create",
                name,
                "--role",
                role,
                "--data-dir",
                str(self.data),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "CHITTY_CONFIG_DIR": str(self.config), "COLUMNS": "400"},
        )
        assert done.returncode == 0, done.stderr
        secret = re.search(r"chitty_\S+", done.stdout)
        chitty_id = re.search(r"CHITTY-[A-Z]+-\S+?(?=\))", done.stdout)
        assert secret and chitty_id, done.stdout
        return secret.group(0), chitty_id.group(0)

    @property
    def config(self) -> Path:
        """Where `launch` keeps the hub's key: beside its data dir."""
        return self.data.with_name(self.data.name + "-config")

    def project(self, name: str, token: str | None = None) -> tuple[str, str]:
        """A new project with a session in it, made as `token`: (project, session)."""
        project = self.rest("POST", "/projects", {"name": name}, token)["entity"]["chittyId"]
        session = self.rest("POST", "/sessions", {"platform": "cli", "projectId": project}, token)[
            "entity"
        ]["chittyId"]
        return project, session


@pytest.fixture(scope="package")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data = tmp_path_factory.mktemp("web") / "data"
    port = free_port()
    user = IdGenerator("web-oidc", lambda: time.time_ns() // 1_000_000).new(Kind.USER)
    issuer = OidcProvider(client_id="chitty-web", user=user)
    loop = Background()
    runner, issuer.url = loop.call(serve(issuer.app()))
    oidc = {
        "CHITTY_OIDC_ISSUER": issuer.url,
        "CHITTY_OIDC_AUDIENCE": issuer.client_id,
        "CHITTY_OIDC_JWKS_URL": f"{issuer.url}/jwks",
    }
    process = start(data, port, launch(data, port, f"web-{port}", "--hosts", "1", env=oidc))
    try:
        yield Hub(f"http://127.0.0.1:{port}", data, issuer)
    finally:
        loop.call(runner.cleanup())
        loop.close()
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(30)


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """A headless Chromium, or a skip that says why there is none."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium on this machine: `apt-get install -y chromium` (.ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, hub: Hub) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page, its errors collected in `page.errors`."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.set_default_timeout(10_000)
    yield page
    context.close()


def sign_in(page: Any, hub: Hub, token: str | None = None) -> None:
    """Sign in through the form, as `token` (the admin by default); wait for the live stream."""
    page.goto(hub.url + "/")
    page.get_by_label("Hub token").fill(token or hub.admin)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#live.on")


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
