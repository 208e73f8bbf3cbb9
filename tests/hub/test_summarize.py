"""The offline summarizer on a fixed transcript, the rule-based entities and relationships,
the cache by content hash, the fall-back, and when a session is summarized again."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import pytest

from hub.context_sources import material_of, session_context_id
from hub.models import Context
from hub.resummarize import Resummarize
from hub.summarize import (
    FallingBack,
    Line,
    Material,
    OfflineSummarizer,
    OpenTodo,
    SummarizerUnavailable,
    Summary,
    SummaryCache,
)

TRANSCRIPT = Material(
    lines=(
        Line(
            "We are building ChittyChronicle, a legal timeline app. "
            "The timeline renders court events by date.",
            "CHITTY-USER-ALICE",
        ),
        Line(
            "@bob please look at src/timeline/render.py, the date parser breaks on "
            "2026-12-10 filings.",
            "CHITTY-USER-ALICE",
        ),
        Line(
            "I fixed the parser in https://github.com/chitty/chronicle/pull/42 today. "
            "The PDF export depends on the timeline renderer.",
            "CHITTY-USER-BOB",
        ),
        Line(
            "Mail the client at jane@example.com or call +1 415-555-0100 before next Friday.",
            "CHITTY-USER-ALICE",
        ),
        Line("CHITTY-TODO-7 is blocked by CHITTY-TODO-3. Lunch was nice.", "CHITTY-USER-BOB"),
    ),
    files=("src/timeline/render.py",),
    todos=(OpenTodo("CHITTY-TODO-7", "Export the timeline to PDF", "pending", ("CHITTY-TODO-3",)),),
    now=datetime(2026, 12, 4, 12),
)


@pytest.fixture(scope="module")
def summary() -> Summary:
    return OfflineSummarizer().summarize(TRANSCRIPT)


def test_summary_and_key_points_are_sentences_of_the_transcript(summary: Summary) -> None:
    assert summary.summary.startswith(
        "5 message(s) by CHITTY-USER-ALICE, CHITTY-USER-BOB; files: src/timeline/render.py; "
        "1 open todo(s)."
    )
    said = " ".join(line.text for line in TRANSCRIPT.lines)
    ranked = [p for p in summary.key_points if not p.startswith("Open todo: ")]
    assert 1 <= len(ranked) <= 5 and all(point in said for point in ranked)
    assert "Open todo: Export the timeline to PDF" in summary.key_points
    assert (summary.summarizer, summary.version) == ("offline-textrank", "1")
    assert summary.content_hash == TRANSCRIPT.digest()


def test_entities_by_rules_each_with_a_confidence(summary: Summary) -> None:
    found = {(e.name, e.type): e.confidence for e in summary.entities}
    assert found[("CHITTY-USER-ALICE", "person")] == 1.0  # an author
    assert found[("@bob", "person")] == 0.9
    assert found[("src/timeline/render.py", "file")] == 1.0
    assert found[("https://github.com/chitty/chronicle/pull/42", "url")] == 0.95
    assert found[("chitty/chronicle", "repo")] == 0.9
    assert found[("jane@example.com", "email")] == 0.95
    assert found[("+14155550100", "phone")] == 0.85
    assert found[("2026-12-10", "date")] == 0.9  # written out
    assert found[("2026-12-11", "date")] == 0.7  # "next Friday" from Friday 2026-12-04
    assert found[("CHITTY-TODO-3", "todo")] == 1.0
    assert not any(e.type == "email" and "bob" in e.name for e in summary.entities)


def test_relationships_mentions_works_on_depends_on(summary: Summary) -> None:
    links = {(r.source, r.target, r.type): r.confidence for r in summary.relationships}
    assert links[("CHITTY-USER-ALICE", "@bob", "mentions")] == 0.9
    assert links[("CHITTY-USER-ALICE", "src/timeline/render.py", "works-on")] == 0.8
    assert links[("CHITTY-USER-BOB", "chitty/chronicle", "works-on")] == 0.8
    assert links[("CHITTY-TODO-7", "CHITTY-TODO-3", "depends-on")] == 1.0


def test_a_sentence_saying_so_links_depends_on() -> None:
    material = Material((Line("api/server.py depends on db/schema.sql now.", "CHITTY-USER-A"),))
    found = OfflineSummarizer().summarize(material).relationships
    links = {(r.source, r.target, r.type) for r in found}
    assert ("api/server.py", "db/schema.sql", "depends-on") in links


def test_the_summary_fits_the_context_model(summary: Summary) -> None:
    context = Context.model_validate(
        {"chittyId": "CHITTY-CONTEXT-1", "type": "session", "content": summary.content()}
    )
    assert context.content.entities[0].confidence == 1.0
    assert context.content.relationships[0].confidence > 0


def test_nothing_to_summarize_says_so() -> None:
    empty = OfflineSummarizer().summarize(Material())
    assert empty.summary == "Nothing to summarize yet." and empty.entities == ()


class Counting:
    name, version = "counting", "1"

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def summarize(self, material: Material) -> Summary:
        self.calls += 1
        if self.fail:
            raise SummarizerUnavailable("timed out")
        return OfflineSummarizer().summarize(material)


def test_the_cache_answers_the_same_content_once() -> None:
    cache, counting = SummaryCache(size=1), Counting()
    first = cache.summarize(counting, TRANSCRIPT)
    assert cache.summarize(counting, TRANSCRIPT) is first and counting.calls == 1
    cache.summarize(counting, Material((Line("other"),)))  # evicts the first (size 1)
    cache.summarize(counting, TRANSCRIPT)
    assert counting.calls == 3


def test_a_failing_summarizer_falls_back_and_is_not_cached() -> None:
    failing = Counting(fail=True)
    chain = FallingBack(failing, OfflineSummarizer())
    cache = SummaryCache()
    answer = cache.summarize(chain, TRANSCRIPT)
    assert answer.summarizer == "offline-textrank"
    assert answer.fallback_reason == "counting: timed out"
    assert answer.provenance()["fallbackReason"] == "counting: timed out"
    cache.summarize(chain, TRANSCRIPT)
    assert failing.calls == 2  # tried again: a fallback is not an answer to keep


def test_material_of_a_session_and_its_context_id() -> None:
    session = {
        "chittyId": "CHITTY-SESSION-ABC",
        "context": {
            "messages": [{"role": "user", "content": "Fix the parser.", "author": "CHITTY-USER-A"}],
            "files": [{"path": "a.py"}],
        },
        "todos": [{"chittyId": "CHITTY-TODO-1", "content": "parser", "status": "pending"}],
    }
    material = material_of([session])
    assert material.lines == (Line("Fix the parser.", "CHITTY-USER-A", "user"),)
    assert material.files == ("a.py",) and material.todos[0].todo_id == "CHITTY-TODO-1"
    assert session_context_id("CHITTY-SESSION-ABC") == "CHITTY-CONTEXT-SABC"


def test_resummarize_waits_for_enough_change_and_quiet() -> None:
    schedule = Resummarize(min_chars=100, quiet_s=5, max_wait_s=30)
    schedule.changed("s", 50, now_s=0)
    assert schedule.due(100) == []  # not enough changed
    schedule.changed("s", 150, now_s=1)
    assert schedule.due(3) == []  # still busy
    assert schedule.due(6) == ["s"]  # quiet for 5 s
    schedule.done("s")
    schedule.changed("s", 200, now_s=7)
    assert schedule.due(100) == []  # 50 more since its summary: not enough
    for second in range(10, 45, 2):  # busy for ever: summarized at the latest after max_wait
        schedule.changed("s", 300 + second, now_s=second)
    assert schedule.due(44) == ["s"]


def test_the_offline_path_needs_no_downloaded_data(tmp_path: object) -> None:
    """With NLTK pointed at an empty directory and no network module used, it still works."""
    probe = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('no network in this test')\n"
        "socket.socket.connect = refuse\n"
        "from hub.summarize import Material, Line, OfflineSummarizer\n"
        "said = (f'Sentence number {i} about the parser bug.' for i in range(9))\n"
        "m = Material(tuple(Line(text) for text in said))\n"
        "print(len(OfflineSummarizer().summarize(m).key_points))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={"NLTK_DATA": str(tmp_path), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=str(__import__("pathlib").Path(__file__).parents[2]),
        check=True,
    )
    assert done.stdout.strip() == "5"
