"""Where things are for the CLI: the data dir a command works on, the hub `chitty up` runs (a
record in its data dir and a per-user pointer to it), and the current project and session of
a working directory (`chitty use`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

RECORD = "hub.json"  # in the data dir while a hub runs on it; in the state dir: the latest
CURRENT = "current.json"  # working directory -> its current project and session


def state_dir(environ: Mapping[str, str]) -> Path:
    """The CLI's own per-user files: CHITTY_STATE_DIR, else $XDG_STATE_HOME/chittychat, else
    ~/.local/state/chittychat."""
    if environ.get("CHITTY_STATE_DIR"):
        return Path(environ["CHITTY_STATE_DIR"])
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "chittychat"


def data_dir_source(option: Path | None, environ: Mapping[str, str]) -> str:
    """How a command found its data dir, in the order `chitty up` reads them."""
    if option is not None:
        return "--data-dir"
    if environ.get("CHITTY_DATA_DIR"):
        return "CHITTY_DATA_DIR"
    return "the default"


@dataclass(frozen=True, slots=True)
class HubRecord:
    """A running hub as `chitty up` records it: where it answers, its process, its data."""

    url: str
    pid: int
    data_dir: str
    started_at: float
    tls_cert: str | None = None

    def alive(self) -> bool:
        """Whether its process still runs (a hub killed with SIGKILL leaves its record)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's process: alive
            return True
        return True

    @classmethod
    def read(cls, path: Path) -> HubRecord | None:
        """The record at `path`, if there is a readable one."""
        try:
            raw = json.loads(path.read_text())
            return cls(
                url=str(raw["url"]),
                pid=int(raw["pid"]),
                data_dir=str(raw["dataDir"]),
                started_at=float(raw["startedAt"]),
                tls_cert=raw.get("tlsCert"),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def to_json(self) -> str:
        fields = asdict(self)
        return json.dumps(
            {
                "url": fields["url"],
                "pid": fields["pid"],
                "dataDir": fields["data_dir"],
                "startedAt": fields["started_at"],
                "tlsCert": fields["tls_cert"],
            },
            indent=2,
        )


def _write(path: Path, text: str) -> None:
    """Replace `path` whole (a reader never sees half a record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text + "\n")
    partial.replace(path)


def record_start(record: HubRecord, environ: Mapping[str, str]) -> None:
    """Note where a hub now answers: in its data dir, and as this user's latest hub."""
    _write(Path(record.data_dir) / RECORD, record.to_json())
    _write(state_dir(environ) / RECORD, record.to_json())


def record_stop(record: HubRecord, environ: Mapping[str, str]) -> None:
    """Take a stopped hub's records away (the per-user one only while it still names it)."""
    for path in (Path(record.data_dir) / RECORD, state_dir(environ) / RECORD):
        found = HubRecord.read(path)
        if found is not None and found.pid == record.pid and found.data_dir == record.data_dir:
            path.unlink(missing_ok=True)


def hub_on(data_dir: Path) -> HubRecord | None:
    """The hub running on `data_dir` now, if one is."""
    found = HubRecord.read(data_dir / RECORD)
    return found if found is not None and found.alive() else None


def latest_hub(environ: Mapping[str, str]) -> HubRecord | None:
    """The hub this user started last, while it runs."""
    found = HubRecord.read(state_dir(environ) / RECORD)
    return found if found is not None and found.alive() else None


@dataclass(frozen=True, slots=True)
class Current:
    """The project and session a working directory uses when a command names none, and the
    directory that set them (the working directory or one of its parents)."""

    project: str | None = None
    session: str | None = None
    set_in: Path | None = None


def _load_current(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    try:
        raw = json.loads((state_dir(environ) / CURRENT).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, dict)}


def current(environ: Mapping[str, str], cwd: Path) -> Current:
    """What `cwd` uses: its own setting, else the nearest parent directory's."""
    known = _load_current(environ)
    here = cwd.absolute()
    for directory in (here, *here.parents):
        found = known.get(str(directory))
        if found:
            return Current(found.get("projectId"), found.get("sessionId"), directory)
    return Current()


def set_current(
    environ: Mapping[str, str],
    cwd: Path,
    *,
    project: str | None = None,
    session: str | None = None,
    clear: bool = False,
) -> Current:
    """Make `project` and/or `session` current in `cwd` (`clear`: forget both first)."""
    known = _load_current(environ)
    key = str(cwd.absolute())
    mine = {} if clear else dict(known.get(key, {}))
    if project is not None:
        if session is None and mine.get("projectId") != project:
            mine.pop("sessionId", None)  # a session of the old project is not current any more
        mine["projectId"] = project
    if session is not None:
        mine["sessionId"] = session
    mine["setAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if clear and project is None and session is None:
        known.pop(key, None)
    else:
        known[key] = mine
    _write(state_dir(environ) / CURRENT, json.dumps(known, indent=2, sort_keys=True))
    return current(environ, cwd)
