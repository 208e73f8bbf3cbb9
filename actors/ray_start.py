"""Starting or joining Ray: `init_ray` and where an embedded Ray keeps its session files."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from hub.settings import HubSettings

LOCAL_RAY_CONFIG: dict[str, Any] = {
    # Ray starts its workers at nice 15, below the gateway's process (the driver) and any load
    # generator beside it: once the cores are busy the hosts, the hub's serial stage, get a
    # fraction of a core (CFS weights 36 against 1024). At 0: 1,673 msgs/s against 1,390-1,511
    # on a contended machine, +3 % on a quiet one (BENCHMARKS.md, eighth pass). The actors are
    # the service: they run at the driver's nice.
    # A Ray started by `ray start` needs `RAY_worker_niceness=0` in its environment instead.
    "worker_niceness": 0,
}
"""`_system_config` of every local Ray the hub starts (`init_ray`)."""


def init_ray(
    address: str | None = None,
    temp_dir: str | None = None,
    dashboard: bool = False,
    **options: Any,
) -> Any:
    """Join the Ray at `address`, or start a local one of our own (None: never a stranger's
    Ray found on this machine) with `LOCAL_RAY_CONFIG`, its session files in `temp_dir`
    (default Ray's, /tmp/ray); no dashboard unless asked, and Ray's logging left to itself.
    What `Runtime.start`, the tests' session and the benchmarks all start. Ray's context."""
    local = {"_temp_dir": temp_dir} if temp_dir is not None and not address else {}
    return ray.init(
        address=address or "local",
        include_dashboard=dashboard,
        log_to_driver=False,
        configure_logging=False,
        _system_config=None if address else LOCAL_RAY_CONFIG,
        **local,
        **options,
    )


# An AF_UNIX socket path holds at most 107 bytes; Ray puts its sockets at
# <temp>/session_<date>_<time>_<micros>_<pid>/sockets/plasma_store (64 bytes after <temp> with
# a 7-digit pid), so a longer temp dir is reached through a short link.
SOCKET_PATH_ROOM = 107 - 66


class RayTempDir:
    """Where an embedded Ray keeps its session (sockets, logs, spilled objects): `<data dir>/ray`,
    emptied when the hub starts (a crashed run's leftovers) and removed on a clean stop. When
    that path is too long for Ray's sockets, Ray is given a short link to it, in a directory of
    the system's temp dir that is this user's own and named after the data dir (a restart after
    a crash takes the same one over)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir.absolute() / "ray"
        self._link_dir: Path | None = None

    def prepare(self) -> str:
        """Make the directory (empty) and answer the path Ray should use for it."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        if len(str(self.path)) <= SOCKET_PATH_ROOM:
            return str(self.path)
        digest = hashlib.sha256(f"{os.getuid()}:{self.path}".encode()).hexdigest()[:12]
        home = Path(tempfile.gettempdir()) / f"chitty-{digest}"
        _forget_dangling(home.parent)
        try:
            home.mkdir(mode=0o700)
        except FileExistsError:
            found = home.lstat()
            theirs = found.st_uid != os.getuid() or found.st_mode & 0o077
            if not stat.S_ISDIR(found.st_mode) or theirs:
                raise RuntimeError(f"{home} is not this user's private directory") from None
        link = home / "ray"
        link.unlink(missing_ok=True)
        link.symlink_to(self.path, target_is_directory=True)
        self._link_dir = home
        return str(link)

    def remove(self) -> None:
        """Remove the session files (Ray has stopped) and the link to them."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._link_dir is not None:
            shutil.rmtree(self._link_dir, ignore_errors=True)  # the link, not what it names
            self._link_dir = None


def _forget_dangling(temp: Path) -> None:
    """Remove this user's links left by hubs that were killed and whose data dir is gone."""
    for home in temp.glob("chitty-" + "[0-9a-f]" * 12):
        link = home / "ray"
        try:
            if home.lstat().st_uid == os.getuid() and link.is_symlink() and not link.exists():
                shutil.rmtree(home, ignore_errors=True)
        except OSError:
            continue


def actor_exists(name: str, namespace: str) -> bool:
    """Whether a named actor is registered (alive or restarting)."""
    try:
        ray.get_actor(name, namespace=namespace)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class JoinedRay:
    """The Ray a hub runs on: one this process started (`started`, with its session files in
    `temp_dir` when it keeps them under the data dir), or one it joined."""

    started: bool
    temp_dir: RayTempDir | None
    dashboard_url: str | None

    @classmethod
    def join(cls, settings: HubSettings, own_temp_dir: bool, dashboard: bool) -> JoinedRay:
        """The Ray this process is connected to already, else `settings.ray_address`'s, else a
        local one started here (see `Runtime.start` for the options)."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if ray.is_initialized():
            return cls(False, None, None)
        local = settings.ray_address is None
        temp_dir = RayTempDir(settings.data_dir) if own_temp_dir and local else None
        try:
            context = init_ray(
                settings.ray_address,
                temp_dir.prepare() if temp_dir is not None else None,
                dashboard,
                namespace=settings.namespace,
            )
        except BaseException:
            if temp_dir is not None:
                temp_dir.remove()
            raise
        url = getattr(context, "dashboard_url", None) if dashboard else None
        return cls(local, temp_dir, url)
