"""What the hub makes of what git prints (`hub.git_state`); the reads themselves are in
tests/actors/test_checks.py."""

from __future__ import annotations

from hub.git_state import Changes, parse_log, parse_status, unreadable


def test_parse_status_counts_renames_and_conflicts_once() -> None:
    text = "\0".join(
        [
            "# branch.oid 0123456789abcdef0123456789abcdef01234567",
            "# branch.head topic",
            "# branch.upstream origin/topic",
            "# branch.ab +2 -3",
            "1 .M N... 100644 100644 100644 aa bb a.txt",
            "2 R. N... 100644 100644 100644 aa bb R100 new name.txt",
            "old name.txt",
            "u UU N... 100644 100644 100644 100644 aa bb cc c.txt",
            "? untracked.txt",
            "! ignored.txt",
            "",
        ]
    )
    branch, head, upstream, ahead, behind, changes = parse_status(text)
    assert (branch, head[:4], upstream, ahead, behind) == ("topic", "0123", "origin/topic", 2, 3)
    assert changes == Changes(staged=1, modified=1, untracked=1, conflicted=1)


def test_parse_log_and_a_failure_in_one_line() -> None:
    at, author, subject = parse_log("2026-12-04T20:16:49+01:00\x1fAda <a@x>\x1ffix: it\n")
    assert (at.isoformat(), author, subject) == (
        "2026-12-04T19:16:49+00:00",
        "Ada <a@x>",
        "fix: it",
    )
    error = unreadable("status", b"fatal: not a git repository (or any parent)\nmore\n", 128)
    assert str(error) == "git status: not a git repository (or any parent)"
    assert str(unreadable("log", b"", 3)) == "git log: exit 3"
