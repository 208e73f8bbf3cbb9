"""Conflicts, the todo mesh explorer and time travel in real Chromium against `chitty up`."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Hub, screenshot, sign_in
from tests.web.test_board import add_todo


def race(hub: Hub, todo: str) -> str:
    """Two concurrent REST writes of the todo's status: the conflict they open."""
    seen = hub.rest("GET", f"/todos/{todo}")["vectorClock"]
    hub.rest("PUT", f"/todos/{todo}", {"status": "completed", "vectorClock": {**seen, "a": 1}})
    raced = hub.rest(
        "PUT", f"/todos/{todo}", {"status": "blocked", "vectorClock": {**seen, "b": 1}}
    )
    [conflict] = raced["conflicts"]
    return str(conflict["conflictId"])


def test_a_conflict_of_two_concurrent_writes_is_resolved_by_picking_a_version(
    page: Any, hub: Hub
) -> None:
    project, session = hub.project("Conflicts")
    todo = add_todo(hub, project, session, "Raced")
    conflict = race(hub, todo)
    sign_in(page, hub)
    page.goto(f"{hub.url}/#/conflicts")
    shown = page.locator(f".conflict[data-id='{conflict}']")
    versions = shown.locator(".version")
    versions.first.wait_for()
    assert versions.count() == 2
    texts = " ".join(versions.all_inner_texts())
    assert '"completed"' in texts and '"blocked"' in texts
    assert texts.count("from api at 20") == 2  # who, from which platform, when: each version
    screenshot(page, "conflicts")
    shown.get_by_role("button", name='Keep "completed"').click()
    shown.wait_for(state="detached")  # gone live, no reload
    assert conflict not in {
        c["conflictId"] for c in hub.rest("GET", "/sync/conflicts")["conflicts"]
    }
    assert hub.rest("GET", f"/todos/{todo}")["entity"]["status"] == "completed"


def test_a_conflict_is_resolved_with_an_edited_value(page: Any, hub: Hub) -> None:
    project, session = hub.project("Conflicts: edit")
    todo = add_todo(hub, project, session, "Raced again")
    conflict = race(hub, todo)
    sign_in(page, hub)
    page.goto(f"{hub.url}/#/conflicts")
    shown = page.locator(f".conflict[data-id='{conflict}']")
    shown.get_by_label("Or resolve with").fill("pending")
    shown.get_by_role("button", name="Resolve").click()
    shown.wait_for(state="detached")
    assert hub.rest("GET", f"/todos/{todo}")["entity"]["status"] == "pending"


def test_the_mesh_highlights_blocked_todos_and_cycles_and_opens_a_todo(page: Any, hub: Hub) -> None:
    project, session = hub.project("Mesh")
    first = add_todo(hub, project, session, "Lay the foundation")
    waiting = add_todo(hub, project, session, "Build the walls", dependencies=[first])
    done = add_todo(hub, project, session, "Buy the land")
    hub.rest("PATCH", f"/todos/{done}", {"status": "completed"})
    free = add_todo(hub, project, session, "Move in", dependencies=[done])
    one = add_todo(hub, project, session, "Chicken")
    two = add_todo(hub, project, session, "Egg", dependencies=[one])
    hub.rest("PATCH", f"/todos/{one}", {"dependencies": [two]})
    sign_in(page, hub)
    page.goto(f"{hub.url}/#/mesh/{project}")
    page.wait_for_function("() => window.chittyMesh && window.chittyMesh.nodes().length === 6")
    classes = page.evaluate(
        "() => Object.fromEntries(window.chittyMesh.nodes().map(n => [n.id(), n.classes()]))"
    )
    assert "blocked-todo" in classes[waiting], classes
    assert "blocked-todo" not in classes[free] and "blocked-todo" not in classes[first]
    assert "cyclic" in classes[one] and "cyclic" in classes[two]
    assert "cyclic" not in classes[waiting]
    assert "blocked" in page.locator(f"#mesh-list li[data-id='{waiting}']").inner_text()
    screenshot(page, "mesh")
    box = page.locator("#graph").bounding_box()
    point = page.evaluate(f"() => window.chittyMesh.$id('{waiting}').renderedPosition()")
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    page.wait_for_url(f"**/#/history/todos/{waiting}")
    page.wait_for_selector("#state")
    assert not page.errors, page.errors


def test_the_time_travel_slider_shows_an_older_value_and_what_changed(page: Any, hub: Hub) -> None:
    project, session = hub.project("Time travel")
    todo = add_todo(hub, project, session, "First wording")
    hub.rest("PATCH", f"/todos/{todo}", {"content": "Second wording"})
    hub.rest("PATCH", f"/todos/{todo}", {"content": "Third wording", "status": "in_progress"})
    sign_in(page, hub)
    page.goto(f"{hub.url}/#/history/todos/{todo}")
    content = page.locator("#state tr[data-field='content'] td")
    content.wait_for()
    assert "Third wording" in content.inner_text()
    slider = page.get_by_label("Version")
    slider.focus()
    page.keyboard.press("ArrowLeft")  # by keyboard: one version back
    page.wait_for_selector("#state tr[data-field='content'] td:has-text('Second wording')")
    assert "content" in page.locator("#fields").inner_text()
    assert "status" not in page.locator("#fields").inner_text()
    page.keyboard.press("Home")
    page.wait_for_selector("#state tr[data-field='content'] td:has-text('First wording')")
    assert "created by CHITTY-USER-" in page.locator("#who").inner_text()
    screenshot(page, "time-travel")
    hub.rest("PATCH", f"/todos/{todo}", {"content": "Fourth wording"})
    page.wait_for_function(
        "() => document.getElementById('version').max === '4'"
    )  # the slider grows live; it stays on the version being looked at
    assert "First wording" in content.inner_text()
