"""`RayTempDir`: an embedded Ray's session files under the hub's data dir, reachable by a path
short enough for Ray's Unix sockets, gone after `remove`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from actors.ray_start import SOCKET_PATH_ROOM, RayTempDir


def test_a_long_data_dir_is_reached_through_a_private_short_link(tmp_path: Path) -> None:
    data = tmp_path / ("a-long-data-dir-name-" * 3)
    (data / "ray" / "session_old").mkdir(parents=True)  # a crashed run's leftovers
    temp = RayTempDir(data)
    given = Path(temp.prepare())
    try:
        assert len(str(given)) <= SOCKET_PATH_ROOM
        assert given.is_symlink() and given.resolve() == (data / "ray").resolve()
        assert list((data / "ray").iterdir()) == []  # emptied
        home = given.parent
        assert home.stat().st_uid == os.getuid() and home.stat().st_mode & 0o777 == 0o700
        again = RayTempDir(data)  # a restart after a crash takes the same link over
        assert again.prepare() == str(given)
    finally:
        temp.remove()
    assert not (data / "ray").exists() and not given.parent.exists()


def test_a_short_data_dir_is_used_as_it_is() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="c") as short:
        temp = RayTempDir(Path(short))
        assert temp.prepare() == f"{short}/ray" and Path(short, "ray").is_dir()
        temp.remove()
        assert not Path(short, "ray").exists()


def test_links_of_data_dirs_that_are_gone_are_swept(tmp_path: Path) -> None:
    stale = Path(tempfile.gettempdir()) / "chitty-00000000abcd"
    stale.mkdir(mode=0o700, exist_ok=True)
    (stale / "ray").unlink(missing_ok=True)
    (stale / "ray").symlink_to(tmp_path / "deleted" / "ray")
    temp = RayTempDir(tmp_path / ("long-enough-to-need-a-link-" * 2))
    temp.prepare()
    try:
        assert not stale.exists()
    finally:
        temp.remove()
