"""Real git repositories in temp dirs, for the tests of what the hub reads from them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.invalid",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def repo(path: Path, files: dict[str, str] | None = None, message: str = "first") -> Path:
    """A new repository at `path` on branch main with one commit of `files`."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    commit(path, files or {"README.md": "hello\n"}, message)
    return path


def commit(path: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (path / name).write_text(text)
    git(path, "add", *files)
    git(path, "commit", "-q", "-m", message)
    return git(path, "rev-parse", "HEAD")


def with_remote(tmp: Path) -> tuple[Path, Path, Path]:
    """A bare remote and two clones of it (`mine` tracks origin/main): remote, mine, theirs."""
    remote = tmp / "remote.git"
    remote.mkdir()
    git(remote, "init", "-q", "--bare", "-b", "main")
    seed = repo(tmp / "seed")
    git(seed, "remote", "add", "origin", str(remote))
    git(seed, "push", "-q", "origin", "main")
    mine, theirs = tmp / "mine", tmp / "theirs"
    for clone in (mine, theirs):
        git(tmp, "clone", "-q", str(remote), clone.name)
    return remote, mine, theirs
