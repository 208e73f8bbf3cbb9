"""Keyboard, screen readers (an axe-core scan of every view: no serious or critical
violation), a phone-sized screen, and the manifest that makes the page installable."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.web.conftest import Hub, screenshot, sign_in
from tests.web.test_board import add_todo, column_of
from tests.web.test_views import race

AXE = "/static/vendor/axe-core-4.10.3/axe.min.js"


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.add_script_tag(url=AXE)  # same origin: the page's CSP allows it
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


@pytest.fixture(scope="module")
def world(hub: Hub) -> dict[str, str]:
    project, session = hub.project("Accessible")
    first = add_todo(hub, project, session, "Reachable by keyboard")
    add_todo(hub, project, session, "Depends on it", dependencies=[first])
    race(hub, add_todo(hub, project, session, "Raced for the scan"))
    return {"project": project, "session": session, "todo": first}


VIEWS = [
    "#/board/{project}",
    "#/mesh/{project}",
    "#/conflicts",
    "#/history/todos/{todo}",
    "#/sessions",
    "#/sessions/{session}",
    "#/entities/projects",
    "#/entities/projects/{project}",
    "#/adapters",
]


def test_the_sign_in_page_has_no_serious_violations(page: Any, hub: Hub) -> None:
    page.goto(hub.url + "/")
    assert serious_violations(page) == []


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_has_no_serious_violations(
    page: Any, hub: Hub, world: dict[str, str], view: str
) -> None:
    sign_in(page, hub)
    page.goto(hub.url + "/" + view.format(**world))
    page.wait_for_selector("#view h1")
    page.wait_for_load_state("networkidle")
    assert serious_violations(page) == []


def test_a_card_moves_by_keyboard_alone(page: Any, hub: Hub, world: dict[str, str]) -> None:
    sign_in(page, hub)
    page.goto(f"{hub.url}/#/board/{world['project']}")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.get_by_role("button", name="Reachable by keyboard").focus()
    page.keyboard.press("Alt+ArrowRight")  # pending -> in progress, the card keeps the focus
    page.wait_for_selector(f".column[data-status=in_progress] .card[data-id='{world['todo']}']")
    assert column_of(page, world["todo"]) == "in_progress"
    page.keyboard.press("Enter")  # its editor, focus on its first field: the status
    page.wait_for_function("() => document.activeElement.id === 'edit-status'")
    page.keyboard.press("ArrowDown")  # in progress -> blocked
    page.get_by_role("dialog").get_by_label("Tags").press("Enter")  # submits the form
    page.wait_for_selector(f".column[data-status=blocked] .card[data-id='{world['todo']}']")
    assert column_of(page, world["todo"]) == "blocked"
    assert hub.rest("GET", f"/todos/{world['todo']}")["entity"]["status"] == "blocked"


def test_a_phone_sized_screen_stacks_the_columns_without_sideways_scrolling(
    chromium: Any, hub: Hub, world: dict[str, str]
) -> None:
    context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        sign_in(page, hub)
        page.goto(f"{hub.url}/#/board/{world['project']}")
        page.wait_for_selector(".card")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, width
        tops = page.evaluate(
            "() => [...document.querySelectorAll('.column')]"
            ".map(c => c.getBoundingClientRect().top)"
        )
        assert tops == sorted(tops) and len(set(tops)) == 4  # one under another
        screenshot(page, "board-phone")
    finally:
        context.close()


def test_the_page_names_a_web_app_manifest_it_can_be_installed_from(page: Any, hub: Hub) -> None:
    page.goto(hub.url + "/")
    href = page.locator("link[rel=manifest]").get_attribute("href")
    with urllib.request.urlopen(hub.url + href) as answer:
        manifest = json.loads(answer.read())
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    assert manifest["name"] and manifest["icons"]
    with urllib.request.urlopen(hub.url + manifest["icons"][0]["src"]) as icon:
        assert icon.headers["Content-Type"] == "image/svg+xml"
    assert page.locator("meta[name=viewport]").count() == 1


def test_the_scan_finds_a_serious_violation_when_there_is_one(page: Any, hub: Hub) -> None:
    """The scan can fail: an unlabelled field is reported."""
    page.goto(hub.url + "/")
    page.evaluate("() => document.querySelector('form').append(document.createElement('input'))")
    assert any(v.startswith("label (critical)") for v in serious_violations(page))
