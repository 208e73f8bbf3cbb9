"""A git repository's state as the hub records it, from what the `git` command prints.

`actors.checks.read_repo` runs `git status --porcelain=v2 --branch -z` (`parse_status`) and
`git log -1` (`parse_log`) in the repository; `RepoState.fields` is what a repo entity records:
branch, HEAD, working tree with counts, ahead/behind its upstream, the last commit. What cannot
be read is a `RepoUnreadable` with a one-line reason (`unreadable` words git's own).

git runs as the hub's user on a repository it did not make, so nothing in the repository may
run a command (`GIT`): the filesystem monitor hook (`core.fsmonitor`) is switched off, no
optional locks are taken (the hub never contends with the user's own git), git never prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub.models.repo import SyncStatus, WorkingTree

GIT = (
    "git",
    "--no-optional-locks",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.untrackedCache=false",
)
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_PAGER": "cat"}
LOG_FORMAT = "--format=%cI%x1f%an <%ae>%x1f%s"


class RepoUnreadable(Exception):
    """The repository could not be read; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class Changes:
    staged: int = 0
    modified: int = 0
    untracked: int = 0
    conflicted: int = 0

    @property
    def dirty(self) -> bool:
        return any((self.staged, self.modified, self.untracked, self.conflicted))


@dataclass(frozen=True, slots=True)
class RepoState:
    """What one read of a repository found."""

    branch: str | None  # None: HEAD is detached
    commit: str  # "" before the first commit
    changes: Changes
    upstream: str | None = None
    ahead: int | None = None
    behind: int | None = None
    commit_at: datetime | None = None
    author: str = ""
    subject: str = ""
    remote_url: str | None = None

    @property
    def sync_status(self) -> SyncStatus:
        if self.ahead is None or self.behind is None:
            return SyncStatus.UNKNOWN
        if self.ahead and self.behind:
            return SyncStatus.DIVERGED
        if self.ahead:
            return SyncStatus.AHEAD
        return SyncStatus.BEHIND if self.behind else SyncStatus.SYNCED

    def fields(self) -> dict[str, Any]:
        """The repo entity's fields this state sets (wire names), `url` only if given."""
        c = self.changes
        fields: dict[str, Any] = {
            "branch": self.branch,
            "commit": self.commit,
            "workingTree": (WorkingTree.DIRTY if c.dirty else WorkingTree.CLEAN).value,
            "changes": {
                "staged": c.staged,
                "modified": c.modified,
                "untracked": c.untracked,
                "conflicted": c.conflicted,
            },
            "upstream": self.upstream,
            "ahead": self.ahead,
            "behind": self.behind,
            "lastCommit": None
            if self.commit_at is None
            else {
                "at": self.commit_at.isoformat(),
                "author": self.author[:500],
                "subject": self.subject[:500],
            },
            "metadata": {"syncStatus": self.sync_status.value, "error": None},
        }
        return fields


def parse_status(text: str) -> tuple[str | None, str, str | None, int | None, int | None, Changes]:
    """`git status --porcelain=v2 --branch -z` -> branch, HEAD, upstream, ahead, behind,
    changes."""
    branch: str | None = None
    commit = ""
    upstream: str | None = None
    ahead = behind = None
    staged = modified = untracked = conflicted = 0
    tokens = iter(text.split("\0"))
    for token in tokens:
        if token.startswith("# branch.oid "):
            oid = token.removeprefix("# branch.oid ")
            commit = "" if oid == "(initial)" else oid
        elif token.startswith("# branch.head "):
            head = token.removeprefix("# branch.head ")
            branch = None if head == "(detached)" else head
        elif token.startswith("# branch.upstream "):
            upstream = token.removeprefix("# branch.upstream ")
        elif token.startswith("# branch.ab "):
            plus, minus = token.removeprefix("# branch.ab ").split()
            ahead, behind = int(plus), -int(minus)
        elif token.startswith(("1 ", "2 ")):
            xy = token[2:4]
            staged += xy[0] != "."
            modified += xy[1] != "."
            if token[0] == "2":
                next(tokens, None)  # a rename's original path
        elif token.startswith("u "):
            conflicted += 1
        elif token.startswith("? "):
            untracked += 1
    return branch, commit, upstream, ahead, behind, Changes(staged, modified, untracked, conflicted)


def parse_log(text: str) -> tuple[datetime, str, str]:
    """`git log -1 LOG_FORMAT` -> when, author, subject."""
    stamp, author, subject = [*text.rstrip("\n").split("\x1f"), "", ""][:3]
    return datetime.fromisoformat(stamp).astimezone(UTC), author, subject


def unreadable(command: str, stderr: bytes, code: int | None) -> RepoUnreadable:
    """What a failed git command says, in one line."""
    lines = stderr.decode(errors="replace").strip().splitlines() or [f"exit {code}"]
    reason = lines[0].removeprefix("fatal: ").removeprefix("error: ")
    return RepoUnreadable(f"git {command}: {reason}")
