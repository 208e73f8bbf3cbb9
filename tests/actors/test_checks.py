"""The watcher's I/O against real things: git repositories made in temp dirs, HTTP services
and closed ports on loopback (`actors.checks`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from actors.checks import probe, read_repo
from hub.git_state import Changes, RepoState, RepoUnreadable
from hub.health import Probe
from hub.models.repo import SyncStatus
from hub.models.service import HealthCheck
from tests.gitrepos import commit, git, repo, with_remote
from tests.servicestub import Service, closed_port, running


def read(path: Path, **options: bool) -> RepoState:
    return asyncio.run(read_repo(path, **options))


def test_a_clean_repository_its_branch_head_and_last_commit(tmp_path: Path) -> None:
    path = repo(tmp_path / "r", message="the first commit")
    state = read(path)
    assert state.branch == "main"
    assert state.commit == git(path, "rev-parse", "HEAD")
    assert state.changes == Changes()
    assert state.author == "Ada <ada@example.invalid>"
    assert state.subject == "the first commit"
    fields = state.fields()
    assert fields["workingTree"] == "clean"
    # No upstream: nothing to be ahead of or behind, and it says so.
    assert fields["upstream"] is None and fields["ahead"] is None
    assert fields["metadata"] == {"syncStatus": "unknown", "error": None}


def test_staged_modified_and_untracked_files_are_counted(tmp_path: Path) -> None:
    path = repo(tmp_path / "r", {"a.txt": "a\n", "b.txt": "b\n"})
    (path / "a.txt").write_text("changed\n")
    (path / "b.txt").write_text("staged\n")
    git(path, "add", "b.txt")
    (path / "new.txt").write_text("new\n")
    (path / "other.txt").write_text("new\n")
    state = read(path)
    assert state.changes == Changes(staged=1, modified=1, untracked=2)
    assert state.fields()["workingTree"] == "dirty"
    assert state.fields()["changes"]["untracked"] == 2


def test_ahead_behind_and_diverged_from_a_local_bare_remote(tmp_path: Path) -> None:
    _, mine, theirs = with_remote(tmp_path)
    assert read(mine).sync_status is SyncStatus.SYNCED
    commit(mine, {"mine.txt": "1\n"}, "mine")
    ahead = read(mine)
    assert (ahead.upstream, ahead.ahead, ahead.behind) == ("origin/main", 1, 0)
    assert ahead.sync_status is SyncStatus.AHEAD
    commit(theirs, {"theirs.txt": "1\n"}, "theirs")
    git(theirs, "push", "-q", "origin", "main")
    git(mine, "fetch", "-q")
    diverged = read(mine, remote_url=True)
    assert (diverged.ahead, diverged.behind) == (1, 1)
    assert diverged.sync_status is SyncStatus.DIVERGED
    assert diverged.remote_url == str(tmp_path / "remote.git")
    git(mine, "reset", "-q", "--hard", "origin/main")
    assert read(mine).sync_status is SyncStatus.SYNCED
    git(mine, "reset", "-q", "--hard", "HEAD~1")
    assert read(mine).sync_status is SyncStatus.BEHIND


def test_a_repository_without_commits_and_a_detached_head(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    state = read(empty)
    assert (state.branch, state.commit, state.commit_at) == ("main", "", None)
    assert state.fields()["lastCommit"] is None
    path = repo(tmp_path / "r")
    git(path, "checkout", "-q", "--detach")
    assert read(path).branch is None


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p, "no such directory"),
        (lambda p: (p.write_text("x"), p)[1], "not a directory"),
        (lambda p: (p.mkdir(), p)[1], "not a git repository"),
    ],
    ids=["missing", "a file", "not a repository"],
)
def test_what_cannot_be_read_is_a_clear_error(tmp_path: Path, make: object, reason: str) -> None:
    path = make(tmp_path / "there")  # type: ignore[operator]
    with pytest.raises(RepoUnreadable, match=reason) as error:
        read(path)
    assert "\n" not in str(error.value)
    with pytest.raises(RepoUnreadable, match="not an absolute path"):
        read(Path("relative"))


def test_nothing_in_the_repository_runs_a_command(tmp_path: Path) -> None:
    """A repository's own config could name a command for git to run on `status`
    (core.fsmonitor): the hub reads repositories it did not make, so it is switched off."""
    path = repo(tmp_path / "r")
    ran = tmp_path / "ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {ran}\n")
    hook.chmod(0o755)
    git(path, "config", "core.fsmonitor", str(hook))
    (path / "README.md").write_text("changed\n")
    assert read(path).changes.modified == 1
    assert not ran.exists()


def run_probe(service: Service, check: HealthCheck) -> Probe:
    async def go() -> Probe:
        async with running(service), aiohttp.ClientSession() as session:
            return await probe(check.model_copy(update={"url": check.url or service.url}), session)

    return asyncio.run(go())


def test_a_healthy_answer_passes_and_names_its_version() -> None:
    result = run_probe(Service(version="2.4.1"), HealthCheck())
    assert result.ok and result.error is None and result.version == "2.4.1"
    assert 0 < result.ms < 5000


def test_an_error_status_a_hang_and_an_unexpected_status_fail_with_a_reason() -> None:
    failing = Service()
    failing.mode = "failing"
    assert run_probe(failing, HealthCheck()).error == "answered 500, expected 2xx"
    hanging = Service()
    hanging.mode = "hanging"
    result = run_probe(hanging, HealthCheck(timeout_s=0.3))
    assert not result.ok and result.error == "no answer within 0.3 s"
    assert run_probe(Service(), HealthCheck(expect_status=204)).error == (
        "answered 200, expected 204"
    )
    refused = run_probe(Service(), HealthCheck(url=f"http://127.0.0.1:{closed_port()}/health"))
    assert not refused.ok and refused.error and "\n" not in refused.error


def test_a_tcp_check_connects() -> None:
    service = Service()

    async def go() -> tuple[Probe, Probe]:
        async with running(service), aiohttp.ClientSession() as session:
            port = service.url.split(":")[2].split("/")[0]
            up = await probe(HealthCheck(kind="tcp", address=f"127.0.0.1:{port}"), session)
            down = HealthCheck(kind="tcp", address=f"127.0.0.1:{closed_port()}")
            return up, await probe(down, session)

    up, down = asyncio.run(go())
    assert up.ok and not down.ok and down.error
