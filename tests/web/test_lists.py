"""Sessions; topics, projects, repos and services; adapters: in Chromium, live."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Hub, screenshot, sign_in
from tests.web.test_board import add_todo


def test_sessions_by_state_with_their_context_and_todos(page: Any, hub: Hub) -> None:
    project, _ = hub.project("Sessions")
    context = {
        "messages": [{"role": "user", "content": "Plan the web UI"}],
        "files": [{"path": "transports/web/pages.py"}],
    }
    session = hub.rest(
        "POST",
        "/sessions",
        {
            "platform": "claude-code",
            "projectId": project,
            "sessionId": "cc-web-1",
            "context": context,
        },
    )["entity"]["chittyId"]
    hub.rest(
        "POST",
        "/contexts",
        {
            "type": "conversation",
            "sources": [session],
            "content": {"summary": "The web UI is planned.", "keyPoints": ["Board first"]},
        },
    )
    add_todo(hub, project, session, "Ship the board")
    sign_in(page, hub)
    page.goto(f"{hub.url}/#/sessions")
    row = page.locator(f"table[aria-labelledby=sessions-active] tr[data-id='{session}']")
    row.wait_for()
    assert "claude-code" in row.inner_text()
    hub.rest("PATCH", f"/sessions/{session}", {"status": "ended"})
    page.locator(f"table[aria-labelledby=sessions-ended] tr[data-id='{session}']").wait_for()
    screenshot(page, "sessions")
    page.get_by_role("link", name="cc-web-1").click()
    page.wait_for_selector("#session-todos li:has-text('Ship the board')")
    text = page.locator("main").inner_text()
    for shown in (
        "The web UI is planned.",
        "Board first",
        "transports/web/pages.py",
        "Plan the web UI",
    ):
        assert shown in text, shown
    screenshot(page, "session")


def test_topics_repos_and_services_list_live_with_related_entities(page: Any, hub: Hub) -> None:
    project, _ = hub.project("Related")
    sign_in(page, hub)
    page.goto(f"{hub.url}/#/entities/repos")
    page.wait_for_selector("h1:has-text('Repos')")
    repo = hub.rest("POST", "/repos", {"url": "https://example.com/web-ui.git"})["entity"]
    link = page.get_by_role("link", name="https://example.com/web-ui.git")
    link.wait_for()  # appeared without a reload
    topic = hub.rest(
        "POST",
        "/topics",
        {"title": "Web UI topic", "artifacts": {"sessions": [], "todos": []}, "relatedTopics": []},
    )["entity"]["chittyId"]
    hub.rest("PATCH", f"/projects/{project}", {"topics": [topic]})
    page.goto(f"{hub.url}/#/entities/projects/{project}")
    page.get_by_role("link", name=topic).click()
    page.wait_for_selector("h1:has-text('Web UI topic')")
    page.goto(f"{hub.url}/#/entities/services")
    hub.rest("POST", "/services", {"name": "chittyid"})
    page.get_by_role("link", name="chittyid").wait_for()
    screenshot(page, "services")
    assert repo["chittyId"].startswith("CHITTY-REPO-")


def test_adapters_show_their_state_and_counters(page: Any, hub: Hub) -> None:
    sign_in(page, hub)
    page.goto(f"{hub.url}/#/adapters")
    row = page.locator("tr[data-name=slack]")
    row.wait_for()
    assert "disabled" in row.inner_text() and "SLACK_BOT_TOKEN" in row.inner_text()
    headers = page.locator("thead th").all_inner_texts()
    assert {"sent", "failed", "lag"} <= set(headers)
    screenshot(page, "adapters")
