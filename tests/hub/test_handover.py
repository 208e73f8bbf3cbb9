"""The hand-over context: the last ten messages by time, files once, open todos only, one text;
and which session a switch carries on from."""

from __future__ import annotations

from hub.handover import LatestSessions, hand_over, handover_context_id, latest_elsewhere


def session(n_messages: int = 12) -> dict[str, object]:
    messages = [
        {"role": "user", "content": f"m{n}", "timestamp": f"2026-12-05T09:{n:02d}:00Z"}
        for n in range(1, n_messages + 1)
    ]
    messages.reverse()  # stored order is a set's, not the conversation's
    return {
        "chittyId": "CHITTY-SESSION-A",
        "platform": "claude-code",
        "projectId": "CHITTY-PROJ-P",
        "context": {"messages": messages, "files": [{"path": "a.py"}, {"path": "a.py"}]},
    }


TODOS = [
    {"chittyId": "CHITTY-TODO-1", "content": "open", "status": "pending"},
    {"chittyId": "CHITTY-TODO-2", "content": "done", "status": "completed"},
    {"chittyId": "CHITTY-TODO-3", "content": "dup", "status": "pending", "mergedInto": "X"},
]


def test_the_last_ten_messages_files_and_open_todos() -> None:
    content = {"summary": "Alice builds the timeline.", "keyPoints": ["Court filter next"]}
    found = hand_over(session(), TODOS, "CHITTY-CONTEXT-SA", content)
    assert [m["content"] for m in found.last_messages] == [f"m{n}" for n in range(3, 13)]
    assert found.files == ("a.py",)
    assert [t["chittyId"] for t in found.open_todos] == ["CHITTY-TODO-1"]
    text = found.text()
    assert text.startswith("Hand-over from session CHITTY-SESSION-A on claude-code")
    assert "Summary: Alice builds the timeline." in text and "- Court filter next" in text
    assert "- user: m12" in text and "m2" not in text.split("Files")[0].split("m12")[1]
    wire = found.wire()
    assert wire["text"] == text and wire["contextId"] == "CHITTY-CONTEXT-SA"
    assert found.digest() == hand_over(session(), TODOS, "CHITTY-CONTEXT-SA", content).digest()


def test_a_context_alone_hands_over_its_summary() -> None:
    found = hand_over(None, (), "CHITTY-CONTEXT-X", {"summary": "s"}, "claude-code")
    assert found.session_id is None and found.platform == "claude-code"
    assert (
        found.text().startswith("Hand-over from claude-code") and "No open todos." in found.text()
    )


def test_a_long_message_is_quoted_by_its_start() -> None:
    one = session(1)
    one["context"]["messages"][0]["content"] = "x" * 5000  # type: ignore[index]
    [message] = hand_over(one, (), "C", None).last_messages
    assert len(message["content"]) < 2100 and message["content"].endswith("…")


def test_a_switch_carries_on_from_the_principals_latest_session_elsewhere() -> None:
    def s(id_: str, platform: str, when: str, by: str = "U") -> dict[str, object]:
        return {
            "chittyId": id_,
            "platform": platform,
            "createdBy": by,
            "timestamps": {"lastActive": when},
        }

    sessions = [
        s("A", "claude-code", "2026-12-05T09:00:00Z"),
        s("B", "claude-code", "2026-12-05T10:00:00Z"),
        s("C", "chatgpt", "2026-12-05T11:00:00Z"),
        s("D", "web", "2026-12-05T12:00:00Z", by="someone else"),
    ]
    assert latest_elsewhere(sessions, "U", "chatgpt")["chittyId"] == "B"  # type: ignore[index]
    assert latest_elsewhere(sessions, "U", None)["chittyId"] == "C"  # type: ignore[index]
    assert latest_elsewhere(sessions, "nobody", None) is None


def test_the_handover_context_is_named_by_the_receiving_session() -> None:
    assert handover_context_id("CHITTY-SESSION-01ABC") == "CHITTY-CONTEXT-H01ABC"


def test_latest_sessions_are_kept_per_principal_and_platform() -> None:
    latest = LatestSessions()
    first = {
        "chittyId": "A",
        "platform": "claude-code",
        "createdBy": "U",
        "timestamps": {"lastActive": "2026-12-05T09:00:00Z"},
    }
    assert not latest.known("U")
    latest.note(first)  # nobody asked about U yet: nothing kept
    assert not latest.known("U")
    latest.learn("U", [first])
    assert latest.elsewhere("U", "chatgpt") == "A" and latest.elsewhere("U", "claude-code") is None
    later = {
        **first,
        "chittyId": "B",
        "platform": "web",
        "timestamps": {"lastActive": "2026-12-05T10:00:00Z"},
    }
    latest.note(later)
    assert latest.elsewhere("U", "chatgpt") == "B"
    stale = {**first, "chittyId": "A0", "timestamps": {"lastActive": "2026-12-05T08:00:00Z"}}
    latest.note(stale)  # an older session on the same platform does not replace a newer one
    assert latest.elsewhere("U", "web") == "A"
