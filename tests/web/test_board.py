"""The Board in real Chromium against a real `chitty up`: todos made in the page reach REST,
changes made over REST move cards without a reload, drag and drop changes a status, a
refused transition says why, edits and filters work, Reconcile runs Example 2."""

from __future__ import annotations

import time
from typing import Any

from tests.web.conftest import Hub, screenshot, sign_in


def open_board(page: Any, hub: Hub, project: str) -> None:
    sign_in(page, hub)
    page.goto(f"{hub.url}/#/board/{project}")
    page.wait_for_selector(".column[data-status=pending]")


def card(page: Any, todo: str) -> Any:
    return page.locator(f".card[data-id='{todo}']")


def column_of(page: Any, todo: str) -> str:
    return str(card(page, todo).evaluate("c => c.closest('.column').dataset.status"))


def add_todo(hub: Hub, project: str, session: str, content: str, **extra: Any) -> str:
    body = {"content": content, "sessionId": session, "projectId": project, **extra}
    return str(hub.rest("POST", "/todos", body)["entity"]["chittyId"])


def test_a_todo_made_in_the_page_is_there_over_rest(page: Any, hub: Hub) -> None:
    project, session = hub.project("Board: create")
    open_board(page, hub, project)
    page.get_by_label("New todo").fill("Write the web UI")
    page.get_by_label("Priority", exact=True).select_option("high")
    page.get_by_role("button", name="Add").click()
    page.wait_for_selector(".column[data-status=pending] .card:has-text('Write the web UI')")
    [todo] = hub.rest("GET", f"/todos?projectId={project}")["items"]
    assert todo["entity"]["content"] == "Write the web UI"
    assert todo["entity"]["sessionId"] == session
    assert todo["entity"]["metadata"]["priority"] == "high"
    screenshot(page, "board")
    assert not page.errors, page.errors


def test_a_change_over_rest_moves_the_card_without_a_reload(page: Any, hub: Hub) -> None:
    project, session = hub.project("Board: live")
    todo = add_todo(hub, project, session, "Moves by itself")
    open_board(page, hub, project)
    assert column_of(page, todo) == "pending"
    page.evaluate("() => { window.notReloaded = true; }")
    began = time.monotonic()
    hub.rest("PATCH", f"/todos/{todo}", {"status": "in_progress"})
    page.wait_for_selector(f".column[data-status=in_progress] .card[data-id='{todo}']")
    assert time.monotonic() - began < 1.0  # "within a second"
    assert page.evaluate("() => window.notReloaded") is True
    made = add_todo(hub, project, session, "Appears by itself")
    page.wait_for_selector(f".column[data-status=pending] .card[data-id='{made}']", timeout=1000)


def test_dragging_a_card_changes_its_status(page: Any, hub: Hub) -> None:
    project, session = hub.project("Board: drag")
    todo = add_todo(hub, project, session, "Drag me")
    open_board(page, hub, project)
    card(page, todo).drag_to(page.locator(".column[data-status=blocked]"))
    page.wait_for_selector(f".column[data-status=blocked] .card[data-id='{todo}']")
    assert hub.rest("GET", f"/todos/{todo}")["entity"]["status"] == "blocked"
    screenshot(page, "board-dragged")


def test_a_refused_transition_says_why_and_the_card_stays(page: Any, hub: Hub) -> None:
    project, session = hub.project("Board: refused")
    todo = add_todo(hub, project, session, "Finished already")
    hub.rest("PATCH", f"/todos/{todo}", {"status": "completed"})
    open_board(page, hub, project)
    card(page, todo).drag_to(page.locator(".column[data-status=in_progress]"))
    notice = page.locator("#notice.error")
    notice.wait_for()
    assert "illegal status transition" in notice.inner_text()
    assert column_of(page, todo) == "completed"
    assert hub.rest("GET", f"/todos/{todo}")["entity"]["status"] == "completed"


def test_status_by_keyboard_edit_and_assign(page: Any, hub: Hub) -> None:
    project, session = hub.project("Board: edit")
    todo = add_todo(hub, project, session, "Edit me")
    open_board(page, hub, project)
    card(page, todo).get_by_role("button", name="Edit me").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Status").select_option("in_progress")
    dialog.get_by_role("button", name="Save").click()
    page.wait_for_selector(f".column[data-status=in_progress] .card[data-id='{todo}']")
    card(page, todo).get_by_role("button", name="Edit me").click()
    dialog.get_by_label("Content").fill("Edited in the page")
    dialog.get_by_label("Priority").select_option("critical")
    dialog.get_by_label("Deadline").fill("2030-01-02T03:04")
    dialog.get_by_label("Assignees").fill("CHITTY-USER-01M91EX1FG2C3VWHW282X46Y9A")
    dialog.get_by_label("Tags").fill("docs, urgent")
    dialog.get_by_role("button", name="Save").click()
    page.wait_for_selector(".card:has-text('Edited in the page')")
    entity = hub.rest("GET", f"/todos/{todo}")["entity"]
    assert entity["content"] == "Edited in the page"
    assert entity["metadata"]["priority"] == "critical"
    assert entity["deadline"].startswith("2030-01-0")
    assert entity["assignees"] == ["CHITTY-USER-01M91EX1FG2C3VWHW282X46Y9A"]
    assert entity["status"] == "in_progress"
    assert sorted(entity["metadata"]["tags"]) == ["docs", "urgent"]


def test_filter_by_session_assignee_and_tag(page: Any, hub: Hub) -> None:
    project, first = hub.project("Board: filters")
    second = hub.rest("POST", "/sessions", {"platform": "web", "projectId": project})["entity"][
        "chittyId"
    ]
    mine = add_todo(hub, project, first, "In the first session", metadata={"tags": ["UI", "web"]})
    theirs = add_todo(
        hub, project, second, "In the second", assignees=["CHITTY-USER-01M91EX1FG2C3VWHW282X46Y9A"]
    )
    open_board(page, hub, project)
    page.get_by_label("Filter by session").select_option(second)
    assert card(page, mine).is_hidden() and card(page, theirs).is_visible()
    page.get_by_label("Filter by session").select_option("")
    page.get_by_label("Filter by assignee").fill("01M91EX1FG")
    assert card(page, mine).is_hidden() and card(page, theirs).is_visible()
    page.get_by_label("Filter by assignee").fill("")
    page.get_by_label("Filter by tag").fill("#ui")  # case and a leading # do not matter
    assert card(page, mine).is_visible() and card(page, theirs).is_hidden()
    assert "#web" in card(page, mine).inner_text()


def test_reconcile_runs_example_2_and_merged_duplicates_show(page: Any, hub: Hub) -> None:
    project, first = hub.project("Board: reconcile")
    second = hub.rest("POST", "/sessions", {"platform": "web", "projectId": project})["entity"][
        "chittyId"
    ]
    add_todo(hub, project, first, "Write the sync engine")
    add_todo(hub, project, second, "write the sync engine")
    open_board(page, hub, project)
    page.get_by_role("button", name="Reconcile").click()
    page.wait_for_selector("#notice.info:has-text('Reconciled')")
    page.wait_for_selector(".card.merged:has-text('merged into')")
    screenshot(page, "board-reconciled")
